package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// cli runs the hourglass command in this process and returns its output
// and exit status.
func cli(args ...string) (string, int) {
	var out bytes.Buffer
	code := run(context.Background(), args, &out, &out)
	return out.String(), code
}

// pki is a cluster CA in a directory, made with "hourglass tls" as the
// README tells a user to.
type pki struct{ dir string }

func newPKI(t *testing.T) pki {
	t.Helper()
	p := pki{dir: t.TempDir()}
	if out, code := cli("tls", "ca", "--dir", p.dir); code != 0 {
		t.Fatalf("tls ca: exit %d: %s", code, out)
	}
	return p
}

func (p pki) ca() string { return filepath.Join(p.dir, "ca.pem") }

// cert makes (once) a certificate for 127.0.0.1 named name and returns
// its files.
func (p pki) cert(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	if _, err := os.Stat(certFile); err == nil {
		return certFile, keyFile
	}
	if out, code := cli("tls", "cert", "--dir", p.dir, "--name", name, "--host", "127.0.0.1"); code != 0 {
		t.Fatalf("tls cert: exit %d: %s", code, out)
	}
	return certFile, keyFile
}

// memberFlags are a node's flags for raft's mutual TLS and gossip
// encryption, with its certificate from p.
func (p pki) memberFlags(t *testing.T, name, gossipKey string) []string {
	cert, key := p.cert(t, name)
	return []string{"--cluster-ca", p.ca(), "--cluster-cert", cert, "--cluster-key", key, "--gossip-key", gossipKey}
}

func newGossipKey(t *testing.T) string {
	t.Helper()
	out, code := cli("gossip-key", "create")
	if code != 0 {
		t.Fatalf("gossip-key create: exit %d: %s", code, out)
	}
	return strings.TrimSpace(out)
}

func (s *server) logHas(parts ...string) bool {
	data, _ := os.ReadFile(s.logPath)
	for _, line := range strings.Split(string(data), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestSecureCluster runs three nodes as the README's "Securing a cluster"
// sets them up: the API over TLS with client certificates, raft over
// mutual TLS, gossip encrypted. The CLI reaches the API with the CA and a
// client certificate, through a follower (which forwards to the leader over
// TLS), and fails clearly without them. A node without the gossip key, and
// one with the key but a certificate of another CA, are refused, and the
// raft configuration stays as it was; a node with both joins.
func TestSecureCluster(t *testing.T) {
	p := newPKI(t)
	gossipKey := newGossipKey(t)
	opsCert, opsKey := p.cert(t, "ops")
	clientTLS, err := client.LoadTLS(p.ca(), opsCert, opsKey)
	if err != nil {
		t.Fatal(err)
	}
	nodeFlags := func(id string) []string {
		cert, key := p.cert(t, id)
		return append([]string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", p.ca()}, p.memberFlags(t, id, gossipKey)...)
	}
	nodes := startClusterWith(t, clientTLS, nodeFlags)
	// Three groups (one per node by default): their leaderships are
	// being spread over the nodes just after the cluster forms, and a
	// forward to a leader that is handing over is answered "retry".
	waitSpread(t, nodes, 3)
	leader, follower := leaderAndFollower(t, nodes)
	if !strings.HasPrefix(follower.addr(), "https://") {
		t.Fatalf("the API is at %s, want https", follower.addr())
	}

	// The CLI, through a follower.
	tlsFlags := []string{"--addr", follower.addr(), "--ca-cert", p.ca(), "--client-cert", opsCert, "--client-key", opsKey}
	create := []string{"task", "create", "--id", "secure-1", "--delay", "1h", "--url", "http://127.0.0.1:9/"}
	if out, code := cli(append(create, tlsFlags...)...); code != 0 {
		t.Fatalf("task create through a follower over TLS: exit %d: %s", code, out)
	}
	if task, err := leader.srv.client("").GetTask(context.Background(), "secure-1"); err != nil || task.State != "scheduled" {
		t.Fatalf("the task on the leader: %+v, %v", task, err)
	}
	for _, c := range []struct {
		what  string
		flags []string
		want  string
	}{
		{"without a client certificate", []string{"--addr", follower.addr(), "--ca-cert", p.ca()}, "client certificate: this server requires one"},
		{"without the CA", []string{"--addr", follower.addr(), "--client-cert", opsCert, "--client-key", opsKey}, "certificate signed by unknown authority"},
		{"over plain http", []string{"--addr", strings.Replace(follower.addr(), "https://", "http://", 1)}, "HTTPS server"},
		{"with a key and no certificate", []string{"--addr", follower.addr(), "--client-key", opsKey}, "both its certificate and its key"},
	} {
		out, code := cli(append([]string{"task", "get", "secure-1"}, c.flags...)...)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("task get %s: exit %d, %q; want a failure saying %q", c.what, code, out, c.want)
		}
	}
	// A certificate of another CA is refused in the handshake.
	otherCert, otherKey := newPKI(t).cert(t, "ops")
	if out, code := cli("task", "get", "secure-1", "--addr", follower.addr(), "--ca-cert", p.ca(), "--client-cert", otherCert, "--client-key", otherKey); code == 0 {
		t.Errorf("task get with a client certificate of another CA: %s", out)
	}
	// Health checks need no client certificate (a load balancer has none).
	noCert, err := client.LoadTLS(p.ca(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.New(follower.addr(), "", client.WithTLS(noCert)).Ready(context.Background()); err != nil {
		t.Errorf("readyz without a client certificate: %v", err)
	}

	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.gossipAddr)
	}
	stranger := func(id string, flags ...string) *server {
		t.Helper()
		return launchServer(t, t.TempDir(), freeAddr(t), append([]string{"--node-id", id, "--gossip-addr", freeAddr(t),
			"--join", strings.Join(seeds, ",")}, flags...)...)
	}
	// members returns the ids in the raft configuration, and whether id is
	// in gossip.
	members := func(id string) (inRaft []string, inGossip bool) {
		t.Helper()
		info, err := leader.srv.client("").Cluster(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range info.Nodes {
			if n.State != "joining" {
				inRaft = append(inRaft, n.ID)
			}
			inGossip = inGossip || n.ID == id && n.Alive
		}
		slices.Sort(inRaft)
		return inRaft, inGossip
	}
	want := []string{"n1", "n2", "n3"}

	// The right certificate, no gossip key: gossip refuses it.
	noKey := stranger("no-gossip-key", p.memberFlags(t, "no-gossip-key", gossipKey)[:6]...)
	waitFor(t, 20*time.Second, "the node without the gossip key failing to join", func() bool { return noKey.logHas("could not join yet") })
	if inRaft, inGossip := members("no-gossip-key"); !slices.Equal(inRaft, want) || inGossip {
		t.Fatalf("after a node without the gossip key tried to join: raft %v, it in gossip %v", inRaft, inGossip)
	}

	// The gossip key, and a certificate of another CA: the leader will not
	// add it.
	stranger("other-ca", newPKI(t).memberFlags(t, "other-ca", gossipKey)...)
	waitFor(t, 20*time.Second, "the leader refusing the node with another CA's certificate", func() bool {
		// The meta group's leader, which adds members, may be any node.
		for _, n := range nodes {
			if n.srv.logHas("failed the cluster's TLS check", "id=other-ca") {
				return true
			}
		}
		return false
	})
	if inRaft, inGossip := members("other-ca"); !slices.Equal(inRaft, want) || !inGossip {
		t.Fatalf("after a node with another CA's certificate joined gossip: raft %v, it in gossip %v", inRaft, inGossip)
	}

	// Both: it joins.
	stranger("n4", p.memberFlags(t, "n4", gossipKey)...)
	waitFor(t, 20*time.Second, "n4 in the raft configuration", func() bool {
		inRaft, _ := members("n4")
		return slices.Contains(inRaft, "n4")
	})
	t.Logf("secure cluster: forwarded create over TLS; refused a node without the gossip key and one with another CA (raft %v), admitted n4", want)
}

// The TLS and gossip flags are checked before anything starts, and a
// mistake names the flags.
func TestServerTLSFlagsAreChecked(t *testing.T) {
	p := newPKI(t)
	cert, key := p.cert(t, "n1")
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--tls-cert", cert}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-client-ca", p.ca()}, "--tls-client-ca needs --tls-cert"},
		{[]string{"--tls-cert", cert, "--tls-key", filepath.Join(p.dir, "missing.pem")}, "--tls-cert, --tls-key: open"},
		{[]string{"--tls-cert", key, "--tls-key", cert}, "--tls-cert, --tls-key"},
		{[]string{"--cluster-ca", p.ca(), "--cluster-cert", cert}, "--cluster-ca, --cluster-cert and --cluster-key go together"},
		{[]string{"--cluster-ca", newPKI(t).ca(), "--cluster-cert", cert, "--cluster-key", key}, "not one of the cluster CA's"},
		{[]string{"--gossip-key", "not base64!"}, "--gossip-key #1 is not base64"},
		{[]string{"--gossip-key", "YWJj"}, "--gossip-key #1 is 3 bytes"},
		{[]string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", p.ca(), "--join", "127.0.0.1:1"}, "needs --cluster-cert"},
	} {
		args := append([]string{"server", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}, c.flags...)
		// A server that wrongly starts stops after a while, exit 0.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out bytes.Buffer
		code := run(ctx, args, &out, &out)
		cancel()
		if code == 0 || !strings.Contains(out.String(), c.want) {
			t.Errorf("server %v: exit %d, %q; want a failure saying %q", c.flags, code, out.String(), c.want)
		}
	}
}
