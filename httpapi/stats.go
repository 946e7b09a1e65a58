package httpapi

import (
	"net/http"
	"time"

	"github.com/hourglass-scheduler/hourglass/wire"
)

// Limits of GET /v1/stats/due.
const (
	maxDueBuckets  = 10_000
	defaultDueSpan = time.Hour
	defaultDueStep = time.Minute
)

// dueStats answers how many tasks fall due per step of a range (default:
// the next hour by minute).
func (a *API) dueStats(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "from", "to", "step", "stale"); err != nil {
		a.writeError(w, err)
		return
	}
	q := r.URL.Query()
	from := a.cfg.Now().Truncate(time.Second)
	step := defaultDueStep
	var err error
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339Nano, v); err != nil || !afterEpoch(from) {
			a.writeError(w, invalid("from: not an RFC 3339 time after 1970 (like 2030-01-02T15:04:05Z): %q", v))
			return
		}
	}
	to := from.Add(defaultDueSpan)
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339Nano, v); err != nil {
			a.writeError(w, invalid("to: not an RFC 3339 time (like 2030-01-02T15:04:05Z): %q", v))
			return
		}
	}
	if !to.After(from) {
		a.writeError(w, invalid("to: must be after from (%s)", from.Format(time.RFC3339Nano)))
		return
	}
	if v := q.Get("step"); v != "" {
		if step, err = parseDuration("step", v, time.Millisecond, maxDelay); err != nil {
			a.writeError(w, err)
			return
		}
	}
	if n := (to.Sub(from) + step - 1) / step; n > maxDueBuckets {
		a.writeError(w, invalid("step: %v makes %d buckets from %s to %s, over the limit of %d; take a longer step or a shorter range",
			step, n, from.Format(time.RFC3339), to.Format(time.RFC3339), maxDueBuckets))
		return
	}
	counts, err := a.backend(r).Store.DueCounts(from.UnixNano(), to.UnixNano(), int64(step))
	if err != nil {
		a.writeError(w, err)
		return
	}
	out := wire.DueStats{From: from.UTC(), To: to.UTC(), Step: step.String(), Buckets: make([]wire.DueBucket, len(counts))}
	for i, n := range counts {
		out.Buckets[i] = wire.DueBucket{Start: from.Add(time.Duration(i) * step).UTC(), Count: n}
		out.Total += n
	}
	writeJSON(w, http.StatusOK, out)
}
