package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"io/fs"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/httpapi"
)

// TestSecretsStayOut runs a node with every kind of secret (API tokens
// from a file and --auth-token, a webhook signing key, a gossip key, TLS
// keys for the API and raft) set to canary values, uses it (creates, a
// signed delivery, reads, refusals, the console, metrics, a backup) at
// debug logging, and then looks for the canaries in everything the node
// put out: its log, every API response with its headers, the CLI's
// output, the backup (unpacked) and every file in its data directory.
func TestSecretsStayOut(t *testing.T) {
	fileToken := "hg_canaryFileToken0123456789"
	flagToken := "canaryFlagToken0123456789"
	wrongToken := "hg_canaryWrongToken0123456789"
	gossipRaw := "canary-gossip-key-32-bytes-long!"
	signingRaw := "canary-signing-key-bytes-0123456"
	gossipKey := base64.StdEncoding.EncodeToString([]byte(gossipRaw))
	signingKey := client.SigningKeyPrefix + base64.StdEncoding.EncodeToString([]byte(signingRaw))

	dir := t.TempDir()
	tokensFile, signingFile := filepath.Join(dir, "tokens"), filepath.Join(dir, "signing-keys")
	os.WriteFile(tokensFile, []byte("ops admin "+httpapi.HashToken(fileToken)+"\n"), 0o600)
	os.WriteFile(signingFile, []byte(signingKey+"\n"), 0o600)
	p := newPKI(t)
	cert, key := p.cert(t, "n1")
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	canaries := map[string]string{
		"tokens-file token": fileToken, "--auth-token": flagToken, "refused token": wrongToken,
		"gossip key": gossipKey, "gossip key bytes": gossipRaw,
		"signing key": signingKey, "signing key base64": strings.TrimPrefix(signingKey, client.SigningKeyPrefix), "signing key bytes": signingRaw,
		"TLS key": pemBody(t, keyPEM),
	}

	dataDir := t.TempDir()
	srv := launchServer(t, dataDir, freeAddr(t), "--gossip-addr", "127.0.0.1:0", "--log-level", "debug",
		"--tokens-file", tokensFile, "--auth-token", flagToken, "--signing-keys-file", signingFile, "--gossip-key", gossipKey,
		"--tls-cert", cert, "--tls-key", key, "--cluster-ca", p.ca(), "--cluster-cert", cert, "--cluster-key", key)
	tlsConfig, err := client.LoadTLS(p.ca(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	srv.clientTLS = tlsConfig
	srv.waitReady()

	var seen bytes.Buffer // everything the node answered
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}, Timeout: 10 * time.Second}
	call := func(method, path, token, body string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		dump, err := httputil.DumpResponse(resp, true)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		seen.Write(dump)
	}
	rcv := newReceiver(t)
	call("POST", "/v1/tasks", fileToken, `{"id":"signed","delay":"10ms","payload":{"a":1},"target":{"url":"`+rcv.URL+`"}}`)
	call("POST", "/v1/tasks", flagToken, `{"id":"later","delay":"1h","target":{"url":"http://127.0.0.1:9/"}}`)
	call("POST", "/v1/tasks", wrongToken, `{"delay":"1h"}`)
	call("GET", "/v1/tasks", "Basic "+wrongToken, "")
	c := client.New(srv.addr, fileToken, client.WithTLS(tlsConfig))
	waitFor(t, 20*time.Second, "the signed delivery", func() bool {
		task, err := c.GetTask(context.Background(), "signed")
		return err == nil && task.State == "succeeded"
	})
	for _, path := range []string{"/v1/tasks", "/v1/tasks/signed", "/v1/queues", "/v1/queues/default", "/v1/cluster",
		"/v1/stats/due", "/v1/openapi.json", "/", "/ui/app.js", "/metrics", "/healthz", "/readyz", "/v1/tasks/none"} {
		call("GET", path, fileToken, "")
	}
	backup := filepath.Join(t.TempDir(), "backup.tar.gz")
	out, code := cli("snapshot", "save", backup, "--addr", srv.addr, "--token", flagToken, "--ca-cert", p.ca())
	if code != 0 {
		t.Fatalf("snapshot save: exit %d: %s", code, out)
	}
	seen.WriteString(out)
	srv.terminate(t)

	places := map[string][]byte{"API responses and CLI output": seen.Bytes()}
	places["the log"], _ = os.ReadFile(srv.logPath)
	places["the backup"] = gunzip(t, backup)
	filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			places[path], _ = os.ReadFile(path)
		}
		return nil
	})
	if !srv.logHas(`msg="task state"`, "id=signed", "to=succeeded") || !bytes.Contains(places["the backup"], []byte("signed")) {
		t.Fatal("the log or the backup does not hold what the node did: nothing to look in")
	}
	for where, data := range places {
		for what, canary := range canaries {
			if bytes.Contains(data, []byte(canary)) {
				t.Errorf("the %s is in %s", what, where)
			}
		}
	}
	t.Logf("secrets: %d canaries looked for in %d places (%d bytes)", len(canaries), len(places), func() (n int) {
		for _, d := range places {
			n += len(d)
		}
		return n
	}())
}

// pemBody is a distinctive line from the middle of a PEM block.
func pemBody(t *testing.T, data []byte) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 3 {
		t.Fatalf("not a PEM block: %q", data)
	}
	return lines[1]
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
