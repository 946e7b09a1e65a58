package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/hourglass-scheduler/hourglass/slots"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// Limits is what the decoder enforces.
type Limits struct {
	MaxPayload  int // bytes of one task's payload (default 1 MiB)
	MaxBatch    int // tasks in one batch (default 1,000)
	MaxBodySize int // bytes of a batch request body (default 32 MiB)
	// MaxConcurrent caps the requests in progress (default 1,024): one
	// more is answered 429 with Retry-After. Health checks and metrics
	// are not counted; a worker's lease waiting for tasks is.
	MaxConcurrent int
	// MaxListBytes ends a page of GET /v1/tasks early once its tasks'
	// records add up to this many bytes (default 4 MiB; a page holds at
	// least one task), so that a page of large payloads costs bounded
	// memory. The answer's next_page_token goes on from there.
	MaxListBytes int
	// MaxQueues caps the number of queues (default 10,000): a task or a
	// setting that would make one more is refused with 409. Concurrent
	// requests may overshoot it by what they add at once.
	MaxQueues int
}

func (l *Limits) setDefaults() {
	if l.MaxQueues <= 0 {
		l.MaxQueues = 10_000
	}
	if l.MaxListBytes <= 0 {
		l.MaxListBytes = 4 << 20
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = 1 << 20
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = 1000
	}
	if l.MaxBodySize <= 0 {
		l.MaxBodySize = 32 << 20
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = 1024
	}
}

// Validation limits that are not configurable.
const (
	maxNameLen     = 256
	maxQueueLen    = 64
	maxHeaders     = 64
	maxHeaderBytes = 8 << 10
	maxAttempts    = 1000
	maxDelay       = 10 * 365 * 24 * time.Hour
	maxTimeout     = 30 * time.Minute
	// bodySlack is what a single-task body may carry besides its payload.
	bodySlack = 64 << 10

	defaultQueue   = "default"
	defaultTimeout = 10 * time.Second
)

// apiError is an error with its HTTP status and API code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func invalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, wire.CodeInvalidArgument, fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *apiError {
	return &apiError{http.StatusRequestEntityTooLarge, wire.CodePayloadTooLarge, fmt.Sprintf(format, args...)}
}

// maxBodyPrealloc is the most readRequestBody allocates for a body
// before its bytes arrive.
const maxBodyPrealloc = 1 << 20

// readRequestBody reads r's whole body, refusing one over limit bytes.
// The buffer is sized for the declared Content-Length at once (up to
// maxBodyPrealloc: a mere claim costs no more) rather than grown by
// doubling as the bytes come.
func readRequestBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	size := int64(bytes.MinRead) // ReadFrom wants this much room to see the end
	if r.ContentLength > 0 {
		size += min(r.ContentLength, limit, maxBodyPrealloc)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		return nil, jsonError(err)
	}
	return buf.Bytes(), nil
}

// decodeBody reads r's body (at most limit bytes) into v as decodeJSON
// does.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	data, err := readRequestBody(w, r, limit)
	if err != nil {
		return err
	}
	return decodeJSON(data, v)
}

// decodeJSON reads one JSON value from data into v, strictly: unknown
// fields, trailing data and type mismatches are errors that name the
// field.
func decodeJSON(data []byte, v any) error {
	if !decodeFast(data, v) {
		if err := decodeStd(data, v); err != nil {
			return err
		}
	}
	if path, dup := duplicateKey(data); dup {
		return invalid("%s: given twice in the request body", path)
	}
	return nil
}

// decodeStd is decodeJSON's reading with encoding/json, without the check
// for duplicate keys.
func decodeStd(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("request body: unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return tooLarge("request body: larger than the limit of %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return invalid("request body: empty; expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("request body: malformed JSON (unexpected end)")
	case errors.As(err, &syntax):
		return invalid("request body: malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("request body: expected a JSON object, got %s", typ.Value)
		}
		return invalid("%s: expected %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid("%s: unknown field", field)
	default:
		return invalid("request body: %v", err)
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "uint32", "uint64", "float64":
		return "a number"
	case "struct", "map", "ptr":
		return "an object"
	case "slice":
		return "an array"
	case "bool":
		return "true or false"
	}
	return goKind
}

// taskBuilder turns API requests into task records. now is the time the
// request is taken to arrive; delays count from it.
type taskBuilder struct {
	limits Limits
	now    time.Time
	// table and group: the tasks are the group's, so a task gets an id
	// of its slots when the request gives none, and one that gives an id
	// of another group's is refused. No table: a check alone (no id is
	// made, any is taken).
	table *slots.Table
	group slots.Group
}

// build validates req and returns the task to create. field prefixes error
// messages ("tasks[3]." in a batch).
func (b *taskBuilder) build(req *wire.CreateTaskRequest, field string) (service.NewTask, error) {
	t := &fsmpb.Task{
		Id:        req.ID,
		Queue:     req.Queue,
		Name:      req.Name,
		CreatedAt: b.now.UnixNano(),
		UpdatedAt: b.now.UnixNano(),
	}
	switch {
	case t.Id == "" && b.table != nil:
		t.Id = newID(b.table, b.group)
	case t.Id == "":
	default:
		if err := checkName(field+"id", t.Id, 128); err != nil {
			return service.NewTask{}, err
		}
		if b.table != nil && b.table.GroupOf(t.Id) != b.group {
			// Only a request that names its group (Hourglass-Group) can
			// get here: an id lives in its slot's group alone.
			return service.NewTask{}, invalid("%sid: %q belongs to group %d, not to group %d that this request names", field, t.Id, b.table.GroupOf(t.Id), b.group)
		}
	}
	if t.Queue == "" {
		t.Queue = defaultQueue
	} else if err := checkName(field+"queue", t.Queue, maxQueueLen); err != nil {
		return service.NewTask{}, err
	}
	if len(t.Name) > maxNameLen {
		return service.NewTask{}, invalid("%sname: longer than %d bytes", field, maxNameLen)
	}
	at, err := b.when(req.ExecuteAt, req.Delay, field, true)
	if err != nil {
		return service.NewTask{}, err
	}
	t.ExecuteAt = at
	if t.Payload, err = b.payload(req.Payload, field); err != nil {
		return service.NewTask{}, err
	}
	if req.Target != nil { // else pull delivery: leased by workers
		if t.Target, err = buildTarget(req.Target, field); err != nil {
			return service.NewTask{}, err
		}
	}
	switch {
	case req.MaxAttempts == 0: // the queue's
	case req.MaxAttempts < 1 || req.MaxAttempts > maxAttempts:
		return service.NewTask{}, invalid("%smax_attempts: must be between 1 and %d, got %d", field, maxAttempts, req.MaxAttempts)
	default:
		t.MaxAttempts = uint32(req.MaxAttempts)
	}
	if req.MaxLateness != "" {
		d, err := parseDuration(field+"max_lateness", req.MaxLateness, time.Millisecond, maxDelay)
		if err != nil {
			return service.NewTask{}, err
		}
		t.MaxLateness = int64(d)
	}
	if req.Backoff != nil {
		if t.Backoff, err = buildBackoff(req.Backoff, field+"backoff."); err != nil {
			return service.NewTask{}, err
		}
	}
	nt := service.NewTask{Task: t}
	if req.ExecuteAt == "" {
		nt.Delay = &req.Delay
	}
	return nt, nil
}

// afterEpoch reports whether t is after 1970-01-01T00:00:00Z, whatever
// zone it was written in (1970-01-01T00:00:00+14:00 is not: it is a
// negative Unix time, which would sort after every later time in the due
// index).
func afterEpoch(t time.Time) bool { return t.After(time.Unix(0, 0)) }

// when resolves exactly one of an RFC 3339 time and a delay (either may be
// absent when required is false: then it returns 0).
func (b *taskBuilder) when(executeAt, delay, field string, required bool) (int64, error) {
	switch {
	case executeAt != "" && delay != "":
		return 0, invalid("%sexecute_at, %sdelay: give one of them, not both", field, field)
	case executeAt != "":
		at, err := time.Parse(time.RFC3339Nano, executeAt)
		if err != nil {
			return 0, invalid("%sexecute_at: not an RFC 3339 time (like 2030-01-02T15:04:05Z): %q", field, executeAt)
		}
		if !afterEpoch(at) || at.After(b.now.Add(maxDelay)) {
			return 0, invalid("%sexecute_at: must be after 1970-01-01T00:00:00Z and within 10 years, got %s", field, executeAt)
		}
		return at.UnixNano(), nil
	case delay != "":
		d, err := time.ParseDuration(delay)
		if err != nil {
			return 0, invalid("%sdelay: not a duration (like \"90s\" or \"1h30m\"): %q", field, delay)
		}
		if d < 0 {
			return 0, invalid("%sdelay: must not be negative, got %s", field, delay)
		}
		if d > maxDelay {
			return 0, invalid("%sdelay: longer than 10 years", field)
		}
		return b.now.Add(d).UnixNano(), nil
	case required:
		return 0, invalid("%sexecute_at, %sdelay: one of them is required", field, field)
	}
	return 0, nil
}

// payload checks and compacts a payload read from a request body, which
// the decoder has checked is valid JSON.
func (b *taskBuilder) payload(raw json.RawMessage, field string) ([]byte, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if len(raw) > b.limits.MaxPayload {
		return nil, tooLarge("%spayload: %d bytes, over the limit of %d", field, len(raw), b.limits.MaxPayload)
	}
	if !bytes.ContainsAny(raw, " \t\r\n") {
		return raw, nil // valid JSON (the decoder checked) without a space: compact
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, invalid("%spayload: not valid JSON: %v", field, err)
	}
	return buf.Bytes(), nil
}

func checkName(field, v string, maxLen int) error {
	if len(v) > maxLen {
		return invalid("%s: longer than %d characters", field, maxLen)
	}
	if !validName(v) {
		return invalid("%s: %q has characters outside A-Z a-z 0-9 . _ : -", field, v)
	}
	return nil
}

// validName reports whether v is non-empty and uses only A-Z a-z 0-9 . _ : -
func validName(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return v != ""
}

var methods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// buildTarget checks a task's target; field is the task's prefix in error
// messages ("tasks[3].", or none), which name "target.url" and so on.
func buildTarget(t *wire.Target, field string) (*fsmpb.Target, error) {
	u, err := url.Parse(t.URL)
	switch {
	case t.URL == "":
		return nil, invalid("%starget.url: required", field)
	case err != nil:
		return nil, invalid("%starget.url: not a URL: %q", field, t.URL)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, invalid("%starget.url: must be http:// or https://, got %q", field, t.URL)
	case u.Host == "":
		return nil, invalid("%starget.url: has no host: %q", field, t.URL)
	case u.User != nil:
		return nil, invalid("%starget.url: must not carry credentials; use headers", field)
	}
	out := &fsmpb.Target{Url: t.URL, Method: strings.ToUpper(t.Method)}
	if out.Method == "" {
		out.Method = http.MethodPost
	} else if !methods[out.Method] {
		return nil, invalid("%starget.method: must be GET, POST, PUT, PATCH or DELETE, got %q", field, t.Method)
	}
	if len(t.Headers) > maxHeaders {
		return nil, invalid("%starget.headers: more than %d headers", field, maxHeaders)
	}
	size := 0
	for k, v := range t.Headers {
		switch {
		case !validHeaderName(k):
			return nil, invalid("%starget.headers: %q is not a valid header name", field, k)
		case !validHeaderValue(v):
			return nil, invalid("%starget.headers.%s: value has characters not allowed in a header", field, k)
		case strings.HasPrefix(strings.ToLower(k), "hourglass-"), strings.EqualFold(k, "Host"), strings.EqualFold(k, "Content-Length"):
			return nil, invalid("%starget.headers: %q is set by Hourglass and cannot be given", field, k)
		}
		size += len(k) + len(v)
	}
	if size > maxHeaderBytes {
		return nil, invalid("%starget.headers: %d bytes, over the limit of %d", field, size, maxHeaderBytes)
	}
	if len(t.Headers) > 0 {
		out.Headers = t.Headers
	}
	timeout := defaultTimeout
	if t.Timeout != "" {
		d, err := time.ParseDuration(t.Timeout)
		if err != nil {
			return nil, invalid("%starget.timeout: not a duration (like \"10s\"): %q", field, t.Timeout)
		}
		if d < time.Millisecond || d > maxTimeout {
			return nil, invalid("%starget.timeout: must be between 1ms and %v, got %s", field, maxTimeout, t.Timeout)
		}
		timeout = d
	}
	out.Timeout = int64(timeout)
	return out, nil
}

func buildBackoff(b *wire.Backoff, field string) (*fsmpb.Backoff, error) {
	out := &fsmpb.Backoff{Multiplier: b.Multiplier}
	for _, d := range []struct {
		name string
		in   string
		out  *int64
	}{{"initial", b.Initial, &out.Initial}, {"max", b.Max, &out.Max}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return nil, invalid("%s%s: not a duration (like \"1s\"): %q", field, d.name, d.in)
		}
		if v <= 0 || v > 24*time.Hour {
			return nil, invalid("%s%s: must be more than 0 and at most 24h, got %s", field, d.name, d.in)
		}
		*d.out = int64(v)
	}
	if b.Multiplier != 0 && (b.Multiplier < 1 || b.Multiplier > 100) {
		return nil, invalid("%smultiplier: must be between 1 and 100, got %v", field, b.Multiplier)
	}
	if out.Initial > 0 && out.Max > 0 && out.Max < out.Initial {
		return nil, invalid("%smax: must not be less than initial", field)
	}
	return out, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.1).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s may be sent as a header value: no
// control characters but horizontal tab (so no CR or LF).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// parseDuration reads a Go duration within [lo, hi], naming field.
func parseDuration(field, v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, invalid("%s: not a duration (like \"30s\" or \"1h30m\"): %q", field, v)
	}
	if d < lo || d > hi {
		return 0, invalid("%s: must be between %v and %v, got %s", field, lo, hi, v)
	}
	return d, nil
}

// ifMatch reads an If-Match header: a version, or 0 when there is none.
func ifMatch(r *http.Request, what string) (uint64, error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v == 0 {
		return 0, invalid("If-Match: must be a %s version (a positive number), got %q", what, h)
	}
	return v, nil
}
