package wheel

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

var epoch = time.Unix(1_700_000_000, 0)

func ms(n int64) time.Time { return epoch.Add(time.Duration(n) * time.Millisecond) }

// ceilMs is when an entry due at t is released: its tick, rounded up.
func ceilMs(t time.Time) time.Time {
	if r := t.Truncate(time.Millisecond); r.Before(t) {
		return r.Add(time.Millisecond)
	}
	return t
}

func newWheel(t testing.TB, size int) *Wheel[int] {
	t.Helper()
	w, err := New[int](time.Millisecond, size, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestNewRejectsBadParameters(t *testing.T) {
	if _, err := New[int](0, 512, epoch); err == nil {
		t.Error("tick 0 accepted")
	}
	if _, err := New[int](time.Millisecond, 1, epoch); err == nil {
		t.Error("1 bucket per level accepted")
	}
}

// TestWorkedExample follows the example in doc.go step by step.
func TestWorkedExample(t *testing.T) {
	start := time.Unix(0, 0)
	w, err := New[string](time.Millisecond, 512, start.Add(1000*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	at := func(n int64) time.Time { return start.Add(time.Duration(n) * time.Millisecond) }
	a, b := &Entry[string]{Value: "A"}, &Entry[string]{Value: "B"}
	if !w.Add(a, at(1003)) || !w.Add(b, at(5000)) {
		t.Fatal("Add refused a future entry")
	}
	var got []string
	collect := func(e *Entry[string]) { got = append(got, e.Value) }
	for _, step := range []struct {
		next int64
		want []string
	}{{1003, []string{"A"}}, {4608, []string{"A"}}, {5000, []string{"A", "B"}}} {
		next, ok := w.Next()
		if !ok || !next.Equal(at(step.next)) {
			t.Fatalf("Next = %v, %v; want %v", next.Sub(start), ok, time.Duration(step.next)*time.Millisecond)
		}
		w.Advance(next, collect)
		if len(got) != len(step.want) {
			t.Fatalf("after Advance(%d) released %v, want %v", step.next, got, step.want)
		}
	}
	if _, ok := w.Next(); ok || w.Len() != 0 {
		t.Fatalf("wheel not empty: Len %d", w.Len())
	}
}

func TestAddDueAlreadyIsRefused(t *testing.T) {
	w := newWheel(t, 8)
	w.Advance(ms(100), func(*Entry[int]) {})
	e := &Entry[int]{}
	if w.Add(e, ms(100)) || w.Add(e, ms(3)) {
		t.Fatal("Add accepted an entry due at or before the current tick")
	}
	if e.Pending() || w.Len() != 0 {
		t.Fatal("refused entry is pending")
	}
	if !w.Add(e, ms(100).Add(time.Microsecond)) {
		t.Fatal("Add refused an entry due within the next tick")
	}
}

func TestCancel(t *testing.T) {
	w := newWheel(t, 8)
	e1, e2 := &Entry[int]{Value: 1}, &Entry[int]{Value: 2}
	w.Add(e1, ms(5))
	w.Add(e2, ms(5000))
	if !w.Cancel(e1) || w.Cancel(e1) {
		t.Fatal("Cancel should succeed once")
	}
	if !w.Cancel(e2) || w.Len() != 0 {
		t.Fatal("Cancel of an overflow entry failed")
	}
	released := 0
	w.Advance(ms(10_000), func(*Entry[int]) { released++ })
	if released != 0 {
		t.Fatalf("released %d cancelled entries", released)
	}
	if _, ok := w.Next(); ok {
		t.Fatal("Next reports work in a wheel of cancelled entries")
	}
	// A cancelled entry can be used again.
	if !w.Add(e1, ms(20_000)) {
		t.Fatal("re-adding a cancelled entry failed")
	}
}

func TestFarFuture(t *testing.T) {
	w := newWheel(t, 512)
	e := &Entry[int]{}
	due := epoch.Add(3 * 365 * 24 * time.Hour)
	w.Add(e, due)
	var released []time.Time
	for i := 0; i < 100 && w.Len() > 0; i++ {
		next, ok := w.Next()
		if !ok {
			t.Fatal("Next empty while an entry is pending")
		}
		w.Advance(next, func(*Entry[int]) { released = append(released, next) })
	}
	if len(released) != 1 || released[0].Before(due) {
		t.Fatalf("released at %v, want once at or after %v", released, due)
	}
}

// TestMatchesReference adds, cancels and advances at random and checks
// every release against a plain map of what is pending: released exactly
// when due (never before, never after the Advance that reaches it), in due
// order, and nothing lost.
func TestMatchesReference(t *testing.T) {
	for _, size := range []int{2, 8, 64, 512} {
		rng := rand.New(rand.NewPCG(uint64(size), 7))
		w, err := New[int](time.Millisecond, size, epoch)
		if err != nil {
			t.Fatal(err)
		}
		entries := make([]Entry[int], 5000)
		dueOf := map[int]time.Time{}
		now := epoch
		for round := 0; round < 400; round++ {
			for k := 0; k < 20; k++ {
				i := rng.IntN(len(entries))
				e := &entries[i]
				e.Value = i
				switch {
				case e.Pending() && rng.IntN(3) == 0:
					if !w.Cancel(e) {
						t.Fatal("Cancel of a pending entry failed")
					}
					delete(dueOf, i)
				case !e.Pending():
					// Delays from sub-millisecond to about an hour.
					d := time.Duration(rng.Int64N(int64(time.Hour))) >> rng.IntN(24)
					due := now.Add(d)
					if w.Add(e, due) {
						dueOf[i] = due
					} else if ceilMs(due).After(now) {
						t.Fatalf("Add refused %v with the clock at %v", due, now)
					}
				}
			}
			now = now.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
			if next, ok := w.Next(); ok && rng.IntN(2) == 0 && next.After(now) {
				now = next
			}
			var released []time.Time
			w.Advance(now, func(e *Entry[int]) {
				due, ok := dueOf[e.Value]
				if !ok {
					t.Fatalf("released entry %d that is not pending", e.Value)
				}
				if due.After(now) {
					t.Fatalf("released entry due %v early, at %v", due, now)
				}
				released = append(released, due)
				delete(dueOf, e.Value)
			})
			if !sort.SliceIsSorted(released, func(a, b int) bool {
				return released[a].Truncate(time.Millisecond).Before(released[b].Truncate(time.Millisecond))
			}) {
				t.Fatalf("released out of due order: %v", released)
			}
			for i, due := range dueOf {
				if !ceilMs(due).After(now) {
					t.Fatalf("entry %d due %v still pending at %v", i, due, now)
				}
			}
			if w.Len() != len(dueOf) {
				t.Fatalf("Len = %d, reference has %d", w.Len(), len(dueOf))
			}
		}
	}
}

func TestAddPendingPanics(t *testing.T) {
	w := newWheel(t, 8)
	e := &Entry[int]{}
	w.Add(e, ms(10))
	defer func() {
		if recover() == nil {
			t.Fatal("second Add of a pending entry did not panic")
		}
	}()
	w.Add(e, ms(20))
}
