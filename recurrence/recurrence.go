package recurrence

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // zones known in a FROM scratch image too

	"github.com/robfig/cron/v3"
)

// MinEvery is the shortest fixed interval.
const MinEvery = time.Second

// Rule is a schedule's recurrence as a user gives it: exactly one of Cron
// and Every. Zero StartAt and EndAt mean no bound.
type Rule struct {
	Cron     string
	Every    time.Duration
	TimeZone string // IANA name; "" is UTC
	StartAt  time.Time
	EndAt    time.Time // exclusive
}

// FieldError is a rule that cannot be used, naming the API field at fault.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Recurrence is a parsed Rule.
type Recurrence struct {
	loc        *time.Location
	cron       cron.Schedule // nil for a fixed interval
	every      time.Duration
	anchor     time.Time // a fixed interval's first run
	start, end time.Time
}

// parser reads five fields, or six with seconds first, and the macros
// except @every (a fixed interval is the rule's Every).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse checks rule and returns its recurrence. created anchors a fixed
// interval without a start: it runs at created (to the second) plus whole
// intervals. A rule that would never run at or after now is refused.
func Parse(rule Rule, created, now time.Time) (*Recurrence, error) {
	r := &Recurrence{start: rule.StartAt, end: rule.EndAt}
	var err error
	if r.loc, err = loadZone(rule.TimeZone); err != nil {
		return nil, err
	}
	if !r.start.IsZero() && !r.end.IsZero() && !r.end.After(r.start) {
		return nil, fieldErr("end_at", "%s is not after start_at %s", r.end.Format(time.RFC3339), r.start.Format(time.RFC3339))
	}
	switch {
	case rule.Cron != "" && rule.Every != 0:
		return nil, fieldErr("every", "give cron or every, not both")
	case rule.Cron != "":
		if r.cron, err = parseCron(rule.Cron); err != nil {
			return nil, err
		}
	case rule.Every != 0:
		if rule.Every < MinEvery || rule.Every%time.Second != 0 {
			return nil, fieldErr("every", "%v: want whole seconds, at least %v", rule.Every, MinEvery)
		}
		r.every = rule.Every
		r.anchor = created.Truncate(time.Second)
		if !r.start.IsZero() {
			r.anchor = r.start.Truncate(time.Second)
			if r.anchor.Before(r.start) {
				r.anchor = r.anchor.Add(time.Second)
			}
		}
	default:
		return nil, fieldErr("cron", "required: a cron expression, or every")
	}
	if r.cron != nil && r.cron.Next(now.In(r.loc)).IsZero() {
		return nil, fieldErr("cron", "%q never matches: the schedule would never run", rule.Cron)
	}
	if _, ok := r.Next(now.Add(-time.Nanosecond)); !ok {
		return nil, fieldErr("end_at", "%s: no run falls before it, the schedule would never run", r.end.Format(time.RFC3339))
	}
	return r, nil
}

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	// time.LoadLocation also takes "Local", a zone the nodes need not
	// agree on (it refuses paths itself).
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, fieldErr("time_zone", "%q is not an IANA time zone name (like Europe/Berlin)", name)
	}
	return loc, nil
}

func parseCron(expr string) (cron.Schedule, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(expr, "@every"):
		return nil, fieldErr("cron", "%q: for a fixed interval give every (like \"every\": \"90s\")", expr)
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, fieldErr("cron", "%q: give the zone as time_zone, not in the expression", expr)
	}
	s, err := parser.Parse(expr)
	if err != nil {
		return nil, fieldErr("cron", "%q: %v (five fields: minute hour day-of-month month day-of-week; or six with seconds first; or a macro like @daily)", expr, err)
	}
	return s, nil
}

// Location is the zone the rule's wall-clock times are read in.
func (r *Recurrence) Location() *time.Location { return r.loc }

// Next returns the first run strictly after `after`, in the rule's zone,
// and false when there is none (past the end, or never).
func (r *Recurrence) Next(after time.Time) (time.Time, bool) {
	if !r.start.IsZero() && after.Before(r.start) {
		after = r.start.Add(-time.Nanosecond)
	}
	var next time.Time
	if r.cron == nil {
		next = r.nextEvery(after)
	} else {
		next = r.nextCron(after)
	}
	if next.IsZero() || !r.end.IsZero() && !next.Before(r.end) {
		return time.Time{}, false
	}
	return next.In(r.loc), true
}

// NextN returns up to n runs after `after`, in order.
func (r *Recurrence) NextN(after time.Time, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		next, ok := r.Next(after)
		if !ok {
			break
		}
		out = append(out, next)
		after = next
	}
	return out
}

func (r *Recurrence) nextEvery(after time.Time) time.Time {
	if after.Before(r.anchor) {
		return r.anchor
	}
	k := after.Sub(r.anchor)/r.every + 1
	return r.anchor.Add(k * r.every)
}

// nextCron asks the parser for the next match, passing over the second
// pass of a wall-clock time the clocks fell back over.
func (r *Recurrence) nextCron(after time.Time) time.Time {
	t := after.In(r.loc)
	for {
		next := r.cron.Next(t)
		if next.IsZero() || !repeatedWallClock(next) {
			return next
		}
		t = next
	}
}

// repeatedWallClock reports whether the wall-clock time of t happened
// before already, at an earlier instant: t is in the first hours of a zone
// period that began with the clocks set back.
func repeatedWallClock(t time.Time) bool {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, before := start.Add(-time.Nanosecond).Zone()
	_, now := t.Zone()
	back := time.Duration(before-now) * time.Second
	return back > 0 && t.Sub(start) < back
}

// OccurrenceID is the id of the task for the occurrence of schedule id at
// `at`: the same on every node and after every failover, so an occurrence
// is created once. Runs are whole seconds apart at the finest. The "@"
// is never in an id a client gives, and slots.Of hashes only what comes
// before it: an occurrence lives in its schedule's slot. The ids of one
// schedule's occurrences sort by time.
func OccurrenceID(scheduleID string, at time.Time) string {
	return scheduleID + "@" + at.UTC().Format(occurrenceLayout)
}

const occurrenceLayout = "20060102T150405Z"

// OccurrenceIDLen is how much longer an occurrence's id is than its
// schedule's.
const OccurrenceIDLen = len("@" + occurrenceLayout)

// ParseOccurrenceID splits an occurrence's id into its schedule's id and
// its time; ok is false for an id that is not an occurrence's.
func ParseOccurrenceID(id string) (scheduleID string, at time.Time, ok bool) {
	i := strings.LastIndexByte(id, '@')
	if i < 1 {
		return "", time.Time{}, false
	}
	at, err := time.Parse(occurrenceLayout, id[i+1:])
	if err != nil {
		return "", time.Time{}, false
	}
	return id[:i], at, true
}

// Jitter is the delay, below max, of the occurrence of schedule id at
// `at`: spread evenly, and the same wherever and whenever it is computed.
func Jitter(scheduleID string, at time.Time, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	sum := sha256.Sum256([]byte(OccurrenceID(scheduleID, at)))
	return time.Duration(binary.BigEndian.Uint64(sum[:]) % uint64(max))
}
