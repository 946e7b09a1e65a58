package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/recurrence"
	"github.com/hourglass-scheduler/hourglass/schedules"
	"github.com/hourglass-scheduler/hourglass/wire"
)

const (
	// maxScheduleIDLen leaves room in a task id (128) for the occurrence's
	// time.
	maxScheduleIDLen = 128 - recurrence.OccurrenceIDLen
	// nextRuns is how many next run times a schedule's view shows.
	nextRuns = 5
	// recentOccurrences is how many occurrences GET of a schedule shows.
	recentOccurrences = 10
	maxJitter         = 24 * time.Hour
	maxCatchUpWindow  = 366 * 24 * time.Hour
)

var overlapNames = map[string]fsmpb.Overlap{"allow": fsmpb.Overlap_OVERLAP_ALLOW, "skip": fsmpb.Overlap_OVERLAP_SKIP, "wait": fsmpb.Overlap_OVERLAP_WAIT}

var catchUpNames = map[string]fsmpb.CatchUp{"all": fsmpb.CatchUp_CATCH_UP_ALL, "latest": fsmpb.CatchUp_CATCH_UP_LATEST}

// nameOf is the API name of an enum value in names.
func nameOf[E comparable](names map[string]E, v E) string {
	for name, e := range names {
		if e == v {
			return name
		}
	}
	return ""
}

// checkTaskID checks a task id named in a path: a client's id, or the id
// of a schedule's occurrence (schedule@time).
func checkTaskID(field, id string) error {
	if sched, _, ok := recurrence.ParseOccurrenceID(id); ok && len(id) <= 128 {
		return checkName(field, sched, maxScheduleIDLen)
	}
	return checkName(field, id, 128)
}

func (a *API) pathScheduleID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if err := checkName("id", id, maxScheduleIDLen); err != nil {
		a.writeError(w, err)
		return "", false
	}
	return id, true
}

// buildSchedule checks a create request (or, with old set, an edit of
// old) and returns the schedule it asks for. The rule is parsed against
// now, so a rule that would never run again is refused here.
func (a *API) buildSchedule(r *http.Request, req *wire.ScheduleRequest, old *fsmpb.Schedule) (*fsmpb.Schedule, error) {
	now := a.cfg.Now()
	s := &fsmpb.Schedule{}
	if old != nil {
		s = proto.Clone(old).(*fsmpb.Schedule)
		if req.ID != "" && req.ID != old.Id {
			return nil, invalid("id: %q is not the schedule's id %q; an id cannot change", req.ID, old.Id)
		}
	} else {
		s.Id = req.ID
		switch {
		case s.Id == "":
			s.Id = newID(a.cfg.Node.Table(), a.backend(r).id)
		default:
			if err := checkName("id", s.Id, maxScheduleIDLen); err != nil {
				return nil, err
			}
			if g := a.cfg.Node.Table().GroupOf(s.Id); g != a.backend(r).id {
				return nil, invalid("id: %q belongs to group %d, not to group %d that this request names", s.Id, g, a.backend(r).id)
			}
		}
	}
	// The rule: cron and every replace each other.
	switch {
	case req.Cron != "" && req.Every != "":
		return nil, invalid("cron, every: give one of them, not both")
	case req.Cron != "":
		s.Cron, s.Every = req.Cron, 0
	case req.Every != "":
		d, err := time.ParseDuration(req.Every)
		if err != nil {
			return nil, invalid("every: not a duration (like \"90s\" or \"1h\"): %q", req.Every)
		}
		s.Cron, s.Every = "", int64(d)
	}
	if req.TimeZone != "" {
		s.TimeZone = req.TimeZone
	}
	for _, f := range []struct {
		field, in string
		out       *int64
	}{{"start_at", req.StartAt, &s.StartAt}, {"end_at", req.EndAt, &s.EndAt}} {
		switch f.in {
		case "":
			continue
		case wire.NoBound:
			*f.out = 0
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, f.in)
		if err != nil || !afterEpoch(at) {
			return nil, invalid("%s: not an RFC 3339 time after 1970 (like 2030-01-02T15:04:05Z), nor %q: %q", f.field, wire.NoBound, f.in)
		}
		*f.out = at.UnixNano()
	}
	if req.Jitter != "" {
		d, err := parseDuration("jitter", req.Jitter, 0, maxJitter)
		if err != nil {
			return nil, err
		}
		s.Jitter = int64(d)
	}
	if req.Paused != nil {
		s.Paused = *req.Paused
	}
	if req.Overlap != "" {
		v, ok := overlapNames[req.Overlap]
		if !ok {
			return nil, invalid("overlap: %q is not one of allow, skip, wait", req.Overlap)
		}
		s.Overlap = v
	}
	if req.CatchUp != "" {
		v, ok := catchUpNames[req.CatchUp]
		if !ok {
			return nil, invalid("catch_up: %q is not one of all, latest", req.CatchUp)
		}
		s.CatchUp = v
	}
	if req.CatchUpWindow != "" {
		d, err := parseDuration("catch_up_window", req.CatchUpWindow, time.Second, maxCatchUpWindow)
		if err != nil {
			return nil, err
		}
		s.CatchUpWindow = int64(d)
	}
	switch {
	case req.Task != nil:
		tmpl, err := a.buildTemplate(req.Task, now)
		if err != nil {
			return nil, err
		}
		s.Template = tmpl
	case old == nil:
		return nil, invalid("task: required: the template of each occurrence (queue, payload, target, ...)")
	}
	if _, err := schedules.Recurrence(s, now); err != nil {
		var fe *recurrence.FieldError
		if errors.As(err, &fe) {
			return nil, invalid("%s", fe.Error())
		}
		return nil, err
	}
	return s, nil
}

// buildTemplate checks a template as a task create would be checked.
func (a *API) buildTemplate(t *wire.TaskTemplate, now time.Time) (*fsmpb.Task, error) {
	b := &taskBuilder{limits: a.cfg.Limits, now: now}
	req := wire.CreateTaskRequest{Queue: t.Queue, Name: t.Name, Delay: "0s", Payload: t.Payload, Target: t.Target,
		MaxAttempts: t.MaxAttempts, Backoff: t.Backoff, MaxLateness: t.MaxLateness}
	nt, err := b.build(&req, "task.")
	if err != nil {
		return nil, err
	}
	tmpl := nt.Task
	tmpl.ExecuteAt, tmpl.CreatedAt, tmpl.UpdatedAt = 0, 0, 0
	return tmpl, nil
}

// readSchedule decodes and checks the schedule r asks for (an edit of
// old, if not nil); on an error it answers w and returns nil.
func (a *API) readSchedule(w http.ResponseWriter, r *http.Request, old *fsmpb.Schedule) *fsmpb.Schedule {
	var req wire.ScheduleRequest
	err := decodeBody(w, r, int64(a.cfg.Limits.MaxPayload+bodySlack), &req)
	var s *fsmpb.Schedule
	if err == nil {
		s, err = a.buildSchedule(r, &req, old)
	}
	if err == nil {
		err = a.checkQueueRoom(r, map[string]string{s.Template.Queue: "task.queue"})
	}
	if err != nil {
		a.writeError(w, err)
		return nil
	}
	return s
}

func (a *API) createSchedule(w http.ResponseWriter, r *http.Request) {
	s := a.readSchedule(w, r, nil)
	if s == nil {
		return
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	stored, existed, err := a.backend(r).Service.CreateSchedule(ctx, s)
	if err != nil {
		a.writeError(w, err)
		return
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeJSON(w, status, ScheduleView(stored, a.cfg.Now(), nil))
}

func (a *API) getSchedule(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathScheduleID(w, r)
	if !ok {
		return
	}
	if err := checkQuery(r, "stale"); err != nil {
		a.writeError(w, err)
		return
	}
	store := a.backend(r).Store
	s, err := store.Schedule(id)
	if err != nil {
		a.writeError(w, err)
		return
	}
	recent, err := store.Occurrences(id, recentOccurrences)
	if err != nil {
		a.writeError(w, err)
		return
	}
	v := ScheduleView(s, a.cfg.Now(), recent)
	w.Header().Set("ETag", strconv.FormatUint(s.Version, 10))
	writeJSON(w, http.StatusOK, v)
}

func (a *API) listSchedules(w http.ResponseWriter, r *http.Request) {
	limit, after, err := scheduleListQuery(r)
	if err != nil {
		a.writeError(w, err)
		return
	}
	list, next, err := a.backend(r).Store.SchedulesPage(after, limit)
	if err != nil {
		a.writeError(w, err)
		return
	}
	now := a.cfg.Now()
	out := wire.ScheduleList{Schedules: make([]wire.Schedule, len(list))}
	for i, s := range list {
		out.Schedules[i] = ScheduleView(s, now, nil)
	}
	if next != "" {
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	writeJSON(w, http.StatusOK, out)
}

// scheduleListQuery reads a list's query: the page's size, and the id
// to list after (from page_token).
func scheduleListQuery(r *http.Request) (limit int, after string, err error) {
	if err := checkQuery(r, "stale", "limit", "page_token"); err != nil {
		return 0, "", err
	}
	if limit, err = listLimit(r, maxListLimit); err != nil {
		return 0, "", err
	}
	after, err = schedulePageToken(r)
	return limit, after, err
}

func schedulePageToken(r *http.Request) (string, error) {
	s := r.URL.Query().Get("page_token")
	if s == "" {
		return "", nil
	}
	token, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !validName(string(token)) {
		return "", invalid("page_token: not a token from a previous page")
	}
	return string(token), nil
}

func (a *API) updateSchedule(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathScheduleID(w, r)
	if !ok {
		return
	}
	ifVersion, err := ifMatch(r, "schedule")
	if err != nil {
		a.writeError(w, err)
		return
	}
	b := a.backend(r)
	old, err := b.Store.Schedule(id)
	if err != nil {
		a.writeError(w, err)
		return
	}
	s := a.readSchedule(w, r, old)
	if s == nil {
		return
	}
	if ifVersion == 0 {
		// Built from what was read: never over an edit made meanwhile.
		ifVersion = old.Version
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	stored, err := b.Service.ReplaceSchedule(ctx, s, ifVersion)
	a.answerSchedule(w, stored, err)
}

func (a *API) setSchedulePaused(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := a.pathScheduleID(w, r)
		if !ok {
			return
		}
		ctx, cancel := a.writeContext(r)
		defer cancel()
		s, err := a.backend(r).Service.PauseSchedule(ctx, id, paused)
		a.answerSchedule(w, s, err)
	}
}

func (a *API) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathScheduleID(w, r)
	if !ok {
		return
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	if _, err := a.backend(r).Service.DeleteSchedule(ctx, id); err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": id})
}

func (a *API) answerSchedule(w http.ResponseWriter, s *fsmpb.Schedule, err error) {
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ScheduleView(s, a.cfg.Now(), nil))
}

// ScheduleView is the API form of a stored schedule: with its next runs
// after now, and recent, its latest occurrences, if given.
func ScheduleView(s *fsmpb.Schedule, now time.Time, recent []*fsmpb.Task) wire.Schedule {
	ts := func(ns int64) *time.Time {
		if ns == 0 {
			return nil
		}
		v := time.Unix(0, ns).UTC()
		return &v
	}
	v := wire.Schedule{
		ID: s.Id, Cron: s.Cron, TimeZone: s.TimeZone, StartAt: ts(s.StartAt), EndAt: ts(s.EndAt),
		Paused: s.Paused, Overlap: nameOf(overlapNames, s.Overlap), CatchUp: nameOf(catchUpNames, s.CatchUp),
		CatchUpWindow: time.Duration(s.CatchUpWindow).String(),
		CreatedAt:     time.Unix(0, s.CreatedAt).UTC(), UpdatedAt: time.Unix(0, s.UpdatedAt).UTC(),
		Version: s.Version, Occurrences: s.Occurrences, Missed: s.Missed, NextRuns: []time.Time{},
	}
	if v.TimeZone == "" {
		v.TimeZone = "UTC"
	}
	if s.CatchUpWindow == 0 {
		v.CatchUpWindow = schedules.DefaultCatchUpWindow.String()
	}
	if s.Every != 0 {
		v.Every = time.Duration(s.Every).String()
	}
	if s.Jitter != 0 {
		v.Jitter = time.Duration(s.Jitter).String()
	}
	if t := s.Template; t != nil {
		task := TaskView(t)
		v.Task = wire.TaskTemplate{Queue: task.Queue, Name: task.Name, Payload: task.Payload, Target: task.Target,
			MaxAttempts: task.MaxAttempts, Backoff: task.Backoff, MaxLateness: task.MaxLateness}
	}
	if !s.Paused {
		if r, err := schedules.Recurrence(s, now); err == nil { // none: it has ended
			// From the cursor: the occurrences created ahead are runs too.
			after := now
			if cursor := time.Unix(0, s.NextAt).Add(-time.Nanosecond); s.NextAt != 0 && cursor.Before(now) {
				after = cursor // occurrences still to create for runs past
			}
			v.NextRuns = r.NextN(after, nextRuns)
		}
	}
	for _, t := range recent {
		v.Recent = append(v.Recent, wire.Occurrence{TaskID: t.Id, ExecuteAt: time.Unix(0, t.ExecuteAt).UTC(),
			State: fsm.StateName(t.State), Attempts: int(t.Attempts), LastError: t.LastError})
	}
	return v
}

// schedulesAcross merges the groups' pages of schedules by id: each group
// lists its first schedules after the same id, so the first ids of all
// are the page.
func (a *API) schedulesAcross(w http.ResponseWriter, r *http.Request) {
	limit, _, err := scheduleListQuery(r)
	if err != nil {
		a.writeError(w, err)
		return
	}
	pages, ok := askEvery[wire.ScheduleList](a, w, r, nil)
	if !ok {
		return
	}
	var all []wire.Schedule
	more := false
	for _, page := range pages {
		more = more || page.NextPageToken != ""
		all = append(all, page.Schedules...)
	}
	slices.SortFunc(all, func(x, y wire.Schedule) int { return strings.Compare(x.ID, y.ID) })
	out := wire.ScheduleList{Schedules: all[:min(limit, len(all))]}
	if out.Schedules == nil {
		out.Schedules = []wire.Schedule{}
	}
	if more || len(all) > limit {
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(out.Schedules[len(out.Schedules)-1].ID))
	}
	writeJSON(w, http.StatusOK, out)
}
