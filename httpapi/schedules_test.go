package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/hourglass-scheduler/hourglass/wire"
)

func (r response) schedule(t testing.TB) wire.Schedule {
	t.Helper()
	var s wire.Schedule
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("decode schedule from %s: %v", r.body, err)
	}
	return s
}

const nightly = `{"id":"nightly","cron":"30 2 * * *","time_zone":"Europe/Berlin",
	"task":{"queue":"cleanup","payload":{"job":"vacuum"},"target":{"url":"http://127.0.0.1:9/"}}}`

func TestScheduleCreateGetAndIdempotency(t *testing.T) {
	s := newTestServer(t, nil)
	r := s.do(t, "POST", "/v1/schedules", nightly)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := r.schedule(t)
	if created.TimeZone != "Europe/Berlin" || created.Overlap != "allow" || created.CatchUp != "all" || created.CatchUpWindow != "24h0m0s" || created.Task.Queue != "cleanup" {
		t.Fatalf("created: %+v", created)
	}
	if len(created.NextRuns) != 5 {
		t.Fatalf("next_runs: %v", created.NextRuns)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for i, run := range created.NextRuns {
		local := run.In(berlin)
		if local.Hour() != 2 || local.Minute() != 30 || i > 0 && !run.After(created.NextRuns[i-1]) {
			t.Fatalf("next run %d: %v (%v in Berlin)", i, run, local)
		}
	}
	// The runs are shown with the zone's offset.
	if !strings.Contains(string(r.body), "T02:30:00+01:00") && !strings.Contains(string(r.body), "T02:30:00+02:00") {
		t.Fatalf("next_runs not in the schedule's zone: %s", r.body)
	}
	if again := s.do(t, "POST", "/v1/schedules", nightly); again.status != http.StatusOK || again.schedule(t).Version != created.Version {
		t.Fatalf("same create again: %d %s", again.status, again.body)
	}
	other := strings.Replace(nightly, "vacuum", "analyze", 1)
	if c := s.do(t, "POST", "/v1/schedules", other); c.status != http.StatusConflict {
		t.Fatalf("create with another body: %d %s", c.status, c.body)
	}
	got := s.do(t, "GET", "/v1/schedules/nightly", "")
	if got.status != http.StatusOK || got.schedule(t).ID != "nightly" || got.header.Get("ETag") != fmt.Sprint(created.Version) {
		t.Fatalf("get: %d %s", got.status, got.body)
	}
	if nf := s.do(t, "GET", "/v1/schedules/none", ""); nf.status != http.StatusNotFound {
		t.Fatalf("get of no schedule: %d", nf.status)
	}
	// Without an id, one is made.
	anon := s.do(t, "POST", "/v1/schedules", `{"every":"1h","task":{}}`)
	if anon.status != http.StatusCreated || anon.schedule(t).ID == "" || anon.schedule(t).Task.Queue != "default" {
		t.Fatalf("create without id: %d %s", anon.status, anon.body)
	}
	list := s.do(t, "GET", "/v1/schedules?limit=1", "")
	var page wire.ScheduleList
	if err := json.Unmarshal(list.body, &page); err != nil || len(page.Schedules) != 1 || page.NextPageToken == "" {
		t.Fatalf("list page 1: %s", list.body)
	}
	list = s.do(t, "GET", "/v1/schedules?limit=1&page_token="+page.NextPageToken, "")
	var page2 wire.ScheduleList
	if err := json.Unmarshal(list.body, &page2); err != nil || len(page2.Schedules) != 1 || page2.Schedules[0].ID == page.Schedules[0].ID || page2.NextPageToken != "" {
		t.Fatalf("list page 2: %s", list.body)
	}
}

// TestScheduleBadInputNamesTheFieldAndStoresNothing: each bad request is
// a 400 naming the field, and leaves no schedule behind.
func TestScheduleBadInputNamesTheFieldAndStoresNothing(t *testing.T) {
	s := newTestServer(t, nil)
	for _, tc := range []struct{ body, field string }{
		{`{"id":"x","cron":"61 * * * *","task":{}}`, "cron"},
		{`{"id":"x","cron":"0 0 30 2 *","task":{}}`, "cron"},
		{`{"id":"x","task":{}}`, "cron"},
		{`{"id":"x","cron":"@every 5s","task":{}}`, "cron"},
		{`{"id":"x","cron":"* * * * *","every":"1m","task":{}}`, "cron, every"},
		{`{"id":"x","every":"500ms","task":{}}`, "every"},
		{`{"id":"x","every":"soon","task":{}}`, "every"},
		{`{"id":"x","every":"1m","time_zone":"Mars/Olympus","task":{}}`, "time_zone"},
		{`{"id":"x","every":"1m","time_zone":"Local","task":{}}`, "time_zone"},
		{`{"id":"x","every":"1m","start_at":"2030-01-02T00:00:00Z","end_at":"2030-01-01T00:00:00Z","task":{}}`, "end_at"},
		{`{"id":"x","every":"1m","end_at":"2001-01-01T00:00:00Z","task":{}}`, "end_at"},
		{`{"id":"x","every":"1m","start_at":"yesterday","task":{}}`, "start_at"},
		{`{"id":"x","every":"1m","jitter":"-1s","task":{}}`, "jitter"},
		{`{"id":"x","every":"1m","overlap":"sometimes","task":{}}`, "overlap"},
		{`{"id":"x","every":"1m","catch_up":"some","task":{}}`, "catch_up"},
		{`{"id":"x","every":"1m"}`, "task"},
		{`{"id":"x","every":"1m","task":{"target":{"url":"ftp://x/"}}}`, "task.target.url"},
		{`{"id":"x","every":"1m","task":{"max_attempts":-1}}`, "task.max_attempts"},
		{`{"id":"x","every":"1m","task":{"queue":"no spaces"}}`, "task.queue"},
		{`{"id":"x@y","every":"1m","task":{}}`, "id"},
		{`{"id":"` + strings.Repeat("a", 112) + `","every":"1m","task":{}}`, "id"},
		{`{"id":"x","every":"1m","task":{},"colour":"red"}`, "colour"},
	} {
		r := s.do(t, "POST", "/v1/schedules", tc.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tc.body, r.status, r.body)
			continue
		}
		if msg := r.errorBody(t).Message; !strings.HasPrefix(msg, tc.field) && !strings.Contains(msg, `"`+tc.field+`"`) {
			t.Errorf("%s: error %q does not name %s", tc.body, msg, tc.field)
		}
	}
	var page wire.ScheduleList
	if err := json.Unmarshal(s.do(t, "GET", "/v1/schedules", "").body, &page); err != nil || len(page.Schedules) != 0 {
		t.Fatalf("schedules after bad requests: %+v %v", page, err)
	}
}

func TestSchedulePatchPauseResumeDelete(t *testing.T) {
	s := newTestServer(t, nil)
	created := s.do(t, "POST", "/v1/schedules", nightly).schedule(t)
	stale := s.do(t, "PATCH", "/v1/schedules/nightly", `{"cron":"0 3 * * *"}`, "If-Match", fmt.Sprint(created.Version+100))
	if stale.status != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d %s", stale.status, stale.body)
	}
	r := s.do(t, "PATCH", "/v1/schedules/nightly", `{"cron":"0 3 * * *","jitter":"10m"}`, "If-Match", fmt.Sprint(created.Version))
	patched := r.schedule(t)
	if r.status != http.StatusOK || patched.Cron != "0 3 * * *" || patched.Jitter != "10m0s" || patched.TimeZone != "Europe/Berlin" ||
		patched.Task.Queue != "cleanup" || patched.Version == created.Version || !patched.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	bounded := s.do(t, "PATCH", "/v1/schedules/nightly", `{"start_at":"2027-01-01T00:00:00Z","end_at":"2040-01-01T00:00:00Z"}`).schedule(t)
	if bounded.StartAt == nil || bounded.EndAt == nil || bounded.EndAt.Year() != 2040 {
		t.Fatalf("patch with bounds: %+v", bounded)
	}
	unbounded := s.do(t, "PATCH", "/v1/schedules/nightly", `{"end_at":"none"}`).schedule(t)
	if unbounded.EndAt != nil || unbounded.StartAt == nil || !unbounded.StartAt.Equal(*bounded.StartAt) {
		t.Fatalf("patch end_at none: end %v, start %v; want no end, the start kept", unbounded.EndAt, unbounded.StartAt)
	}
	if bad := s.do(t, "PATCH", "/v1/schedules/nightly", `{"start_at":"never"}`); bad.status != http.StatusBadRequest || !strings.HasPrefix(bad.errorBody(t).Message, "start_at:") {
		t.Fatalf("patch start_at never: %d %s", bad.status, bad.body)
	}
	patched = s.do(t, "PATCH", "/v1/schedules/nightly", `{"start_at":"none"}`).schedule(t)
	if patched.StartAt != nil || patched.EndAt != nil {
		t.Fatalf("patch start_at none: %+v", patched)
	}
	if bad := s.do(t, "PATCH", "/v1/schedules/nightly", `{"time_zone":"Nowhere/Town"}`); bad.status != http.StatusBadRequest {
		t.Fatalf("patch to a bad zone: %d %s", bad.status, bad.body)
	}
	if got := s.do(t, "GET", "/v1/schedules/nightly", "").schedule(t); got.TimeZone != "Europe/Berlin" || got.Version != patched.Version {
		t.Fatalf("a refused patch changed the schedule: %+v", got)
	}
	paused := s.do(t, "POST", "/v1/schedules/nightly/pause", "").schedule(t)
	if !paused.Paused || len(paused.NextRuns) != 0 || paused.Cron != "0 3 * * *" {
		t.Fatalf("paused: %+v", paused)
	}
	resumed := s.do(t, "POST", "/v1/schedules/nightly/resume", "").schedule(t)
	if resumed.Paused || len(resumed.NextRuns) != 5 {
		t.Fatalf("resumed: %+v", resumed)
	}
	if d := s.do(t, "DELETE", "/v1/schedules/nightly", ""); d.status != http.StatusOK {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	if d := s.do(t, "DELETE", "/v1/schedules/nightly", ""); d.status != http.StatusNotFound {
		t.Fatalf("delete again: %d %s", d.status, d.body)
	}
}

// TestOccurrenceIdsAreReservedButReadable: a client cannot create a task
// with an occurrence's id, but can read one by it.
func TestOccurrenceIdsAreReservedButReadable(t *testing.T) {
	s := newTestServer(t, nil)
	r := s.do(t, "POST", "/v1/tasks", `{"id":"nightly@20261101T053000Z","delay":"1h"}`)
	if r.status != http.StatusBadRequest || !strings.HasPrefix(r.errorBody(t).Message, "id") {
		t.Fatalf("create with an occurrence's id: %d %s", r.status, r.body)
	}
	if g := s.do(t, "GET", "/v1/tasks/nightly@20261101T053000Z", ""); g.status != http.StatusNotFound {
		t.Fatalf("get by an occurrence's id: %d %s", g.status, g.body)
	}
	if g := s.do(t, "GET", "/v1/tasks/nightly@soon", ""); g.status != http.StatusBadRequest {
		t.Fatalf("get by a malformed id: %d %s", g.status, g.body)
	}
}

// TestEndedScheduleCanBePausedNotResumed: once its end_at has passed, a
// schedule has no next run; it can still be paused, and resuming it is a
// 400 naming end_at.
func TestEndedScheduleCanBePausedNotResumed(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := newTestServer(t, func(c *testConfig) {
		c.Now = clock
		g := c.Backend.Group.(*cluster.Group)
		c.Backend.Service = service.New(g, g.FSM(), service.Config{Now: clock})
	})
	r := s.do(t, "POST", "/v1/schedules", `{"id":"brief","every":"1s","end_at":"2026-12-01T09:00:10Z","task":{}}`)
	if r.status != http.StatusCreated || len(r.schedule(t).NextRuns) != 5 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	now = now.Add(time.Hour)
	if got := s.do(t, "GET", "/v1/schedules/brief", "").schedule(t); len(got.NextRuns) != 0 {
		t.Fatalf("next runs after the end: %v", got.NextRuns)
	}
	if p := s.do(t, "POST", "/v1/schedules/brief/pause", ""); p.status != http.StatusOK || !p.schedule(t).Paused {
		t.Fatalf("pause after the end: %d %s", p.status, p.body)
	}
	r = s.do(t, "POST", "/v1/schedules/brief/resume", "")
	if r.status != http.StatusBadRequest || !strings.HasPrefix(r.errorBody(t).Message, "end_at") {
		t.Fatalf("resume after the end: %d %s", r.status, r.body)
	}
}
