package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/scheduler"
)

// noWorkers stands in for the scheduler so the worker routes are served.
type noWorkers struct{}

func (noWorkers) Lease(context.Context, scheduler.LeaseRequest) ([]*fsmpb.Task, error) {
	return nil, nil
}
func (noWorkers) Peek(context.Context, scheduler.LeaseRequest) (bool, error) {
	return false, nil
}
func (noWorkers) Ack(context.Context, string, scheduler.Holder, string) (*fsmpb.Task, error) {
	return nil, nil
}
func (noWorkers) AckMany(context.Context, []scheduler.AckItem) ([]error, error) { return nil, nil }
func (noWorkers) Nack(context.Context, string, scheduler.Holder, string, *time.Duration) (*fsmpb.Task, error) {
	return nil, nil
}
func (noWorkers) Extend(context.Context, string, scheduler.Holder, time.Duration) (*fsmpb.Task, error) {
	return nil, nil
}

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

type openAPISchema struct {
	Ref        string                   `json:"$ref"`
	Properties map[string]openAPISchema `json:"properties"`
	AllOf      []openAPISchema          `json:"allOf"`
	Items      *openAPISchema           `json:"items"`
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: version %q, want 3.x", doc.OpenAPI)
	}
	return &doc
}

// Every route the router serves is in the document, and every operation
// the document describes is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	// Every optional part on: worker and backup routes, /metrics.
	api := New(Config{Metrics: http.NotFoundHandler()})
	served := map[string]bool{}
	param := regexp.MustCompile(`\{(\w+)\.\.\.\}`)
	for _, pattern := range api.Routes() {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			t.Errorf("route %q has no method", pattern)
			continue
		}
		path = param.ReplaceAllString(strings.TrimSuffix(path, "{$}"), "{$1}")
		served[strings.ToLower(method)+" "+path] = true
	}

	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[method+" "+path] = true
		}
	}
	for op := range served {
		if !documented[op] {
			t.Errorf("route %s is served but not in openapi.json", op)
		}
	}
	for op := range documented {
		if !served[op] {
			t.Errorf("openapi.json describes %s, which is not served", op)
		}
	}
	if len(served) < 30 {
		t.Fatalf("only %d routes found: %v", len(served), served)
	}
}

// The document's schemas have exactly the JSON fields of the client's
// types, and every $ref resolves.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]any{
		"Target": client.Target{}, "Backoff": client.Backoff{}, "CreateTaskRequest": client.CreateTaskRequest{},
		"UpdateTaskRequest": client.UpdateTaskRequest{}, "Task": client.Task{}, "ListResponse": client.ListResponse{},
		"BatchRequest": client.BatchRequest{}, "BatchResult": client.BatchResult{}, "BatchResponse": client.BatchResponse{},
		"RateLimit": client.RateLimit{}, "QueueSettings": client.QueueSettings{}, "Queue": client.Queue{}, "QueueList": client.QueueList{},
		"LeaseRequest": client.LeaseRequest{}, "LeasedTask": client.LeasedTask{}, "LeaseResponse": client.LeaseResponse{},
		"AckRequest": client.AckRequest{}, "AckItem": client.AckItem{}, "AcksRequest": client.AcksRequest{},
		"AckResult": client.AckResult{}, "AcksResponse": client.AcksResponse{}, "NackRequest": client.NackRequest{},
		"ExtendRequest": client.ExtendRequest{}, "RedriveRequest": client.RedriveRequest{}, "RedriveResponse": client.RedriveResponse{},
		"BulkRequest": client.BulkRequest{}, "BulkResponse": client.BulkResponse{}, "ErrorBody": client.ErrorBody{},
		"ErrorResponse": client.ErrorResponse{}, "ClusterInfo": client.ClusterInfo{}, "ClusterLeader": client.ClusterLeader{},
		"ClusterNode": client.ClusterNode{}, "Snapshot": client.Snapshot{}, "RestoreResponse": client.RestoreResponse{},
		"DueStats": client.DueStats{}, "DueBucket": client.DueBucket{}, "RetryPolicy": client.RetryPolicy{},
		"ClusterGroup": client.ClusterGroup{}, "GroupReplica": client.GroupReplica{}, "SnapshotGroup": client.SnapshotGroup{},
		"Schedule": client.Schedule{}, "ScheduleList": client.ScheduleList{}, "ScheduleRequest": client.ScheduleRequest{},
		"Occurrence": client.Occurrence{}, "TaskTemplate": client.TaskTemplate{},
	}
	for name, v := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s", name)
			continue
		}
		got := doc.fields(t, schema)
		want := jsonFields(reflect.TypeOf(v))
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has fields %v; client.%s has %v", name, got, name, want)
		}
	}
	var refs []string
	collectRefs(json.RawMessage(openAPI), &refs)
	for _, ref := range refs {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if ok {
			if _, found := doc.Components.Schemas[name]; !found {
				t.Errorf("$ref %s resolves to nothing", ref)
			}
		}
	}
	if len(refs) < 50 {
		t.Errorf("only %d $refs found", len(refs))
	}
}

// fields lists a schema's property names, through allOf and $ref.
func (d *openAPIDoc) fields(t *testing.T, s openAPISchema) []string {
	if s.Ref != "" {
		return d.fields(t, d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")])
	}
	var out []string
	for name := range s.Properties {
		out = append(out, name)
	}
	for _, part := range s.AllOf {
		out = append(out, d.fields(t, part)...)
	}
	return out
}

// jsonFields lists the JSON names of a struct's fields, embedded structs
// flattened, as encoding/json sees them.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

func collectRefs(raw json.RawMessage, refs *[]string) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		for k, v := range obj {
			var s string
			if k == "$ref" && json.Unmarshal(v, &s) == nil {
				*refs = append(*refs, s)
				continue
			}
			collectRefs(v, refs)
		}
		return
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		for _, v := range arr {
			collectRefs(v, refs)
		}
	}
}

// The document is served, by any node, without asking the leader.
func TestOpenAPIIsServed(t *testing.T) {
	srv := newTestServer(t, nil)
	resp := srv.do(t, http.MethodGet, "/v1/openapi.json", "")
	if resp.status != http.StatusOK || !json.Valid(resp.body) || !strings.Contains(string(resp.body), `"openapi": "3.0.3"`) {
		t.Fatalf("GET /v1/openapi.json: %d %.200s", resp.status, resp.body)
	}
}
