package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/hourglass-scheduler/hourglass/client"
)

func tokensFor(t testing.TB, name, secret string, scopes ...Scope) *Tokens {
	t.Helper()
	var tokens Tokens
	if err := tokens.Add(name, secret, scopes...); err != nil {
		t.Fatal(err)
	}
	return &tokens
}

// Every route, taken from the router itself, refuses a request without a
// token, with a malformed header, with a wrong token (401) and with a
// token lacking its scope (403); a token with the scope, or admin, gets
// past authentication. Public routes need none.
func TestEveryRouteIsAuthorized(t *testing.T) {
	tokens := tokensFor(t, "reader", "read-secret", ScopeTasksRead)
	for _, tok := range []struct {
		name, secret string
		scope        Scope
	}{{"writer", "write-secret", ScopeTasksWrite}, {"worker", "worker-secret", ScopeWorker}, {"admin", "admin-secret", ScopeAdmin}} {
		if err := tokens.Add(tok.name, tok.secret, tok.scope); err != nil {
			t.Fatal(err)
		}
	}
	secretFor := map[Scope]string{ScopeTasksRead: "read-secret", ScopeTasksWrite: "write-secret", ScopeWorker: "worker-secret", ScopeAdmin: "admin-secret"}
	srv := newTestServer(t, func(c *testConfig) { c.Tokens = tokens; c.Backend.Workers = noWorkers{} })
	api := New(Config{Metrics: http.NotFoundHandler()})
	param := regexp.MustCompile(`\{(\w+)(\.\.\.)?\}`)
	public := 0
	for _, pattern := range api.Routes() {
		method, path, _ := strings.Cut(pattern, " ")
		path = param.ReplaceAllString(strings.TrimSuffix(path, "{$}"), "x")
		scope := api.Scope(pattern)
		if want := expectedScope(pattern); scope != want {
			t.Errorf("%s needs scope %q, want %q", pattern, scope, want)
		}
		send := func(header string) response {
			if header == "" {
				return srv.do(t, method, path, "{}")
			}
			return srv.do(t, method, path, "{}", "Authorization", header)
		}
		if scope == scopePublic {
			public++
			if r := send(""); r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
				t.Errorf("%s is public, but without a token: %d %s", pattern, r.status, r.body)
			}
			continue
		}
		for _, c := range []struct {
			what, header string
			status       int
			code         string
		}{
			{"no token", "", http.StatusUnauthorized, client.CodeUnauthenticated},
			{"malformed header", "Basic " + secretFor[scope], http.StatusUnauthorized, client.CodeUnauthenticated},
			{"empty bearer", "Bearer ", http.StatusUnauthorized, client.CodeUnauthenticated},
			{"wrong token", "Bearer " + secretFor[scope] + "x", http.StatusUnauthorized, client.CodeUnauthenticated},
		} {
			r := send(c.header)
			if r.status != c.status || r.errorBody(t).Code != c.code {
				t.Errorf("%s with %s: %d %s, want %d %s", pattern, c.what, r.status, r.body, c.status, c.code)
			}
			if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s with %s: 401 without WWW-Authenticate", pattern, c.what)
			}
		}
		for other, secret := range secretFor {
			if other == scope || other == ScopeAdmin {
				continue
			}
			if r := send("Bearer " + secret); r.status != http.StatusForbidden || r.errorBody(t).Code != client.CodePermissionDenied {
				t.Errorf("%s (needs %s) with a %s token: %d %s, want 403", pattern, scope, other, r.status, r.body)
			}
		}
		for _, secret := range []string{secretFor[scope], secretFor[ScopeAdmin]} {
			if r := send("Bearer " + secret); r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
				t.Errorf("%s with its scope: %d %s", pattern, r.status, r.body)
			}
		}
	}
	if public != 6 || len(api.Routes()) < 30 {
		t.Errorf("%d routes, %d public; want 6 public (health, ready, metrics, console, its files, openapi)", len(api.Routes()), public)
	}
}

// expectedScope is the policy, written out apart from the router.
func expectedScope(pattern string) Scope {
	method, path, _ := strings.Cut(pattern, " ")
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/{$}" || strings.HasPrefix(path, "/ui/") || path == "/v1/openapi.json":
		return scopePublic
	case strings.HasSuffix(path, "/lease") || strings.HasSuffix(path, "/ack") || strings.HasSuffix(path, "/nack") || strings.HasSuffix(path, "/extend"):
		return ScopeWorker
	case path == snapshotPath || strings.HasPrefix(path, "/v1/cluster/nodes/"):
		return ScopeAdmin
	case method == http.MethodGet:
		return ScopeTasksRead
	default:
		return ScopeTasksWrite
	}
}

func TestReadTokens(t *testing.T) {
	var tokens Tokens
	file := "# name scopes sha256\n\nci tasks:write,tasks:read " + HashToken("ci-secret") + "\nops admin " + HashToken("ops-secret") + "\n"
	if err := tokens.ReadTokens(strings.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	if tok := tokens.find("ci-secret"); tok == nil || tok.Name != "ci" || !tok.Allows(ScopeTasksRead) || tok.Allows(ScopeWorker) {
		t.Errorf("ci token: %+v", tok)
	}
	if tok := tokens.find("ops-secret"); tok == nil || !tok.Allows(ScopeWorker) {
		t.Errorf("admin token: %+v", tok)
	}
	if tok := tokens.find(HashToken("ci-secret")); tok != nil {
		t.Errorf("the stored hash itself was accepted as a token")
	}
	for _, bad := range []string{
		"ci tasks:write",
		"ci tasks:everything " + HashToken("x"),
		"ci admin plain-secret",
		"ci admin " + HashToken("a") + "\nci admin " + HashToken("b"),
		"a admin " + HashToken("a") + "\nb admin " + HashToken("a"),
		"w worker: " + HashToken("w"),
		"w worker:bad/queue " + HashToken("w"),
	} {
		var tokens Tokens
		if err := tokens.ReadTokens(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("tokens file %q: %v, want an error naming the line", bad, err)
		} else if strings.Contains(err.Error(), "plain-secret") {
			t.Errorf("the error repeats what may be a token: %v", err)
		}
	}
}

// TestWorkerTokenLimitedToQueues: a "worker:QUEUE" scope leases from
// that queue only (403 elsewhere, naming the scope it would need), and is
// no other scope.
func TestWorkerTokenLimitedToQueues(t *testing.T) {
	var tokens Tokens
	file := "mail worker:emails,worker:sms " + HashToken("mail-secret") + "\nall worker " + HashToken("all-secret") + "\n"
	if err := tokens.ReadTokens(strings.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, func(c *testConfig) { c.Tokens = &tokens; c.Backend.Workers = &stubWorkers{} })
	lease := func(queue, secret string) response {
		return srv.do(t, "POST", "/v1/queues/"+queue+"/lease", "{}", "Authorization", "Bearer "+secret)
	}
	for _, q := range []string{"emails", "sms"} {
		if r := lease(q, "mail-secret"); r.status != http.StatusOK {
			t.Errorf("lease of %s with worker:%s: %d %s", q, q, r.status, r.body)
		}
	}
	r := lease("billing", "mail-secret")
	if r.status != http.StatusForbidden || !strings.Contains(r.errorBody(t).Message, "worker:billing") {
		t.Errorf("lease of billing with worker:emails,worker:sms: %d %s", r.status, r.body)
	}
	if r := lease("billing", "all-secret"); r.status != http.StatusOK {
		t.Errorf("lease with worker: %d %s", r.status, r.body)
	}
	if r := srv.do(t, "POST", "/v1/tasks/x/ack", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA"}`, "Authorization", "Bearer mail-secret"); r.status != http.StatusOK {
		t.Errorf("ack with a queue-limited worker token: %d %s", r.status, r.body)
	}
	if r := srv.do(t, "GET", "/v1/tasks/x", "", "Authorization", "Bearer mail-secret"); r.status != http.StatusForbidden {
		t.Errorf("read with a worker token: %d %s", r.status, r.body)
	}
}

// FuzzReadTokens: a tokens file never makes the reader panic, and what it
// accepts is a token per line, each named, with scopes, found by its
// secret's hash only.
func FuzzReadTokens(f *testing.F) {
	f.Add("# tokens\nci tasks:write,tasks:read " + HashToken("s") + "\n\nops admin " + HashToken("t") + "\n")
	f.Add("a worker " + strings.Repeat("0", 64))
	f.Add("a , zz")
	f.Fuzz(func(t *testing.T, file string) {
		var tokens Tokens
		if err := tokens.ReadTokens(strings.NewReader(file)); err != nil {
			return
		}
		lines := 0
		for _, line := range strings.Split(file, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				lines++
			}
		}
		if tokens.Len() != lines {
			t.Fatalf("%d tokens from %d lines", tokens.Len(), lines)
		}
		for _, tok := range tokens.list {
			if tok.Name == "" || len(tok.Scopes) == 0 {
				t.Fatalf("accepted token %+v", tok)
			}
		}
	})
}

// Without tokens (the quick start) every request is served.
func TestNoTokensNoAuth(t *testing.T) {
	api := New(Config{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/healthz", nil)
	api.ServeHTTP(rec, req)
	var body map[string]string
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		t.Fatalf("without tokens: %d %s", rec.Code, rec.Body)
	}
}

// With RequireClientCert, a request without a verified client certificate
// is refused, naming what is missing, but for the health checks.
func TestRequireClientCert(t *testing.T) {
	s := newTestServer(t, func(c *testConfig) { c.RequireClientCert = true })
	for _, path := range []string{"/v1/tasks", "/metrics", "/", "/v1/openapi.json"} {
		r := s.do(t, http.MethodGet, path, "")
		if r.status != http.StatusUnauthorized || !strings.Contains(r.errorBody(t).Message, "client certificate") {
			t.Errorf("GET %s without a client certificate: %d %s", path, r.status, r.body)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := s.do(t, http.MethodGet, path, ""); r.status != http.StatusOK {
			t.Errorf("GET %s without a client certificate: %d %s", path, r.status, r.body)
		}
	}
}
