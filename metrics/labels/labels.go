package labels

import "sync"

// Other is the label value that stands for every value past the limit. It
// is not a valid queue name, so it never collides with one.
const Other = "(other)"

// Limiter admits up to Max distinct label values; it is safe for
// concurrent use, and one Limiter shared by all of a process's metrics
// gives the same queues their own series everywhere.
type Limiter struct {
	max int

	mu   sync.RWMutex
	seen map[string]struct{}
}

// New returns a limiter of max distinct values (at least 1).
func New(n int) *Limiter {
	return &Limiter{max: max(1, n), seen: map[string]struct{}{}}
}

// Value is v if v has its own series (admitting it if there is room), else
// Other. A nil Limiter admits every value.
func (l *Limiter) Value(v string) string {
	if l == nil {
		return v
	}
	l.mu.RLock()
	_, ok := l.seen[v]
	full := len(l.seen) >= l.max
	l.mu.RUnlock()
	if ok {
		return v
	}
	if full {
		return Other
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[v]; ok {
		return v
	}
	if len(l.seen) >= l.max {
		return Other
	}
	l.seen[v] = struct{}{}
	return v
}
