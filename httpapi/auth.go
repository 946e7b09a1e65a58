package httpapi

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/hourglass-scheduler/hourglass/wire"
)

// Scope is what a token may do.
type Scope string

// The scopes. ScopeAdmin may do everything.
const (
	ScopeTasksRead  Scope = "tasks:read"  // read tasks, queues, stats, the cluster view
	ScopeTasksWrite Scope = "tasks:write" // create, change and cancel tasks; queue settings and bulk changes
	ScopeWorker     Scope = "worker"      // lease, ack, nack, extend
	// scopeWorkerOf is the prefix of "worker:QUEUE": the worker scope for
	// leases of one queue only.
	scopeWorkerOf = "worker:"

	ScopeAdmin Scope = "admin" // backups, restores, cluster membership, and all of the above

	// scopePublic marks routes served without a token: health, metrics,
	// the console's static files and the API's description.
	scopePublic Scope = ""
)

var knownScopes = []Scope{ScopeTasksRead, ScopeTasksWrite, ScopeWorker, ScopeAdmin}

// Token is one API token, known by the SHA-256 of its secret.
type Token struct {
	Name   string
	Scopes []Scope
	hash   [sha256.Size]byte
}

// Allows reports whether the token carries scope (admin carries all; a
// worker scope limited to queues is a worker scope).
func (t *Token) Allows(scope Scope) bool {
	if slices.Contains(t.Scopes, scope) || slices.Contains(t.Scopes, ScopeAdmin) {
		return true
	}
	return scope == ScopeWorker && slices.ContainsFunc(t.Scopes, func(s Scope) bool { return strings.HasPrefix(string(s), scopeWorkerOf) })
}

// MayLease reports whether the token may lease tasks of queue: a worker
// scope for every queue, or "worker:QUEUE". (Ack, nack and extend need the
// lease's own token, so a lease limits them too.)
func (t *Token) MayLease(queue string) bool {
	return slices.Contains(t.Scopes, ScopeWorker) || slices.Contains(t.Scopes, ScopeAdmin) || slices.Contains(t.Scopes, Scope(scopeWorkerOf+queue))
}

// Tokens are the API tokens a server accepts. The zero value accepts none.
type Tokens struct {
	list []Token
}

// NewToken returns a fresh random secret.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return "hg_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is the form a token's secret is stored in: hex SHA-256. The
// secrets are random, so a fast hash leaks nothing a slow one would hide.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Add accepts secret with scopes under name (the --auth-token flag).
func (t *Tokens) Add(name, secret string, scopes ...Scope) error {
	if secret == "" {
		return fmt.Errorf("token %s: empty secret", name)
	}
	return t.add(Token{Name: name, Scopes: scopes, hash: sha256.Sum256([]byte(secret))})
}

func (t *Tokens) add(tok Token) error {
	for _, other := range t.list {
		if other.Name == tok.Name {
			return fmt.Errorf("token %s: the name is used twice", tok.Name)
		}
		if other.hash == tok.hash {
			return fmt.Errorf("token %s: the same secret as token %s", tok.Name, other.Name)
		}
	}
	t.list = append(t.list, tok)
	return nil
}

// Len is how many tokens are accepted.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.list)
}

// ReadTokens adds the tokens of a tokens file: one per line,
//
//	NAME SCOPE[,SCOPE...] SHA256-HEX
//
// with blank lines and lines starting with # ignored. "hourglass token
// create" makes such lines.
func (t *Tokens) ReadTokens(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			return fmt.Errorf("line %d: want NAME SCOPES SHA256, got %d fields", line, len(fields))
		}
		scopes, err := ParseScopes(fields[1])
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		tok := Token{Name: fields[0], Scopes: scopes}
		sum, err := hex.DecodeString(fields[2])
		if err != nil || len(sum) != sha256.Size {
			// The field is not repeated: it may be a token itself.
			return fmt.Errorf("line %d: the third field is not a SHA-256 in hex (64 characters); store the token's hash, never the token", line)
		}
		copy(tok.hash[:], sum)
		if err := t.add(tok); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	return sc.Err()
}

// ParseScopes reads a comma-separated scope list.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, name := range strings.Split(s, ",") {
		scope := Scope(strings.TrimSpace(name))
		if queue, ok := strings.CutPrefix(string(scope), scopeWorkerOf); ok {
			if err := checkName("queue", queue, maxQueueLen); err != nil {
				return nil, fmt.Errorf("scope %q: %v", name, err.Error())
			}
		} else if !slices.Contains(knownScopes, scope) {
			return nil, fmt.Errorf("unknown scope %q; want %s, or worker:QUEUE", name, scopeList())
		}
		out = append(out, scope)
	}
	return out, nil
}

func scopeList() string {
	names := make([]string, len(knownScopes))
	for i, s := range knownScopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// find returns the token whose secret this is. Every token is compared, in
// constant time, whichever matches.
func (t *Tokens) find(secret string) *Token {
	sum := sha256.Sum256([]byte(secret))
	var found *Token
	for i := range t.list {
		if subtle.ConstantTimeCompare(sum[:], t.list[i].hash[:]) == 1 {
			found = &t.list[i]
		}
	}
	return found
}

// authorize checks r's bearer token for scope, and for leases of queue
// when that is set: nil, or a 401 or 403.
func (a *API) authorize(r *http.Request, scope Scope, queue string) *apiError {
	header := r.Header.Get("Authorization")
	if header == "" {
		return &apiError{http.StatusUnauthorized, wire.CodeUnauthenticated, "Authorization: a bearer token is required (Authorization: Bearer <token>)"}
	}
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || secret == "" {
		return &apiError{http.StatusUnauthorized, wire.CodeUnauthenticated, "Authorization: not a bearer token; want Authorization: Bearer <token>"}
	}
	tok := a.cfg.Tokens.find(secret)
	if tok == nil {
		return &apiError{http.StatusUnauthorized, wire.CodeUnauthenticated, "Authorization: the token is not valid"}
	}
	if !tok.Allows(scope) {
		return &apiError{http.StatusForbidden, wire.CodePermissionDenied,
			fmt.Sprintf("token %s lacks the %s scope this request needs", tok.Name, scope)}
	}
	if queue != "" && !tok.MayLease(queue) {
		return &apiError{http.StatusForbidden, wire.CodePermissionDenied,
			fmt.Sprintf("token %s may not lease tasks of queue %s: its worker scope is limited to other queues (this needs worker, or worker:%s)", tok.Name, queue, queue)}
	}
	return nil
}
