package wheel

import (
	"fmt"
	"time"
)

// Entry is one timer in a wheel. The caller owns it: it may embed or pool
// entries, and may add an entry again once it has been released or
// cancelled. The zero Entry is ready to use.
type Entry[T any] struct {
	// Value is the caller's payload, released with the entry.
	Value T

	due        int64 // in ticks since the epoch, rounded up
	bucket     *bucket[T]
	prev, next *Entry[T]
}

// Pending reports whether the entry sits in a wheel, waiting.
func (e *Entry[T]) Pending() bool { return e.bucket != nil }

// bucket is a circular doubly linked list of entries with a sentinel head.
type bucket[T any] struct {
	head       Entry[T]
	expiration int64 // tick at which to flush; meaningful while queued
	heapIndex  int   // position in the wheel's heap, -1 when not queued
}

func (b *bucket[T]) init() {
	b.head.next = &b.head
	b.head.prev = &b.head
	b.heapIndex = -1
}

func (b *bucket[T]) push(e *Entry[T]) {
	e.bucket = b
	e.prev = b.head.prev
	e.next = &b.head
	b.head.prev.next = e
	b.head.prev = e
}

func (b *bucket[T]) remove(e *Entry[T]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next, e.bucket = nil, nil, nil
}

type level[T any] struct {
	tick        int64 // ticks of level 0 per bucket
	interval    int64 // tick * wheel size
	currentTime int64 // start of the current bucket, a multiple of tick
	buckets     []bucket[T]
}

// Wheel is a hierarchical timing wheel. Use New to make one.
type Wheel[T any] struct {
	tick   time.Duration
	size   int64
	levels []*level[T]
	queue  []*bucket[T] // min-heap on expiration
	len    int
}

// New returns a wheel with the given tick (its resolution) and number of
// buckets per level, whose clock starts at now.
func New[T any](tick time.Duration, bucketsPerLevel int, now time.Time) (*Wheel[T], error) {
	if tick <= 0 {
		return nil, fmt.Errorf("wheel: tick must be positive, got %v", tick)
	}
	if bucketsPerLevel < 2 {
		return nil, fmt.Errorf("wheel: need at least 2 buckets per level, got %d", bucketsPerLevel)
	}
	w := &Wheel[T]{tick: tick, size: int64(bucketsPerLevel)}
	w.levels = []*level[T]{w.newLevel(1, w.toTickFloor(now))}
	return w, nil
}

func (w *Wheel[T]) newLevel(tick, now int64) *level[T] {
	l := &level[T]{
		tick:        tick,
		interval:    tick * w.size,
		currentTime: now - now%tick,
		buckets:     make([]bucket[T], w.size),
	}
	for i := range l.buckets {
		l.buckets[i].init()
	}
	return l
}

// Len is the number of pending entries.
func (w *Wheel[T]) Len() int { return w.len }

func (w *Wheel[T]) toTickFloor(t time.Time) int64 {
	return t.UnixNano() / int64(w.tick)
}

func (w *Wheel[T]) toTickCeil(t time.Time) int64 {
	ns, tick := t.UnixNano(), int64(w.tick)
	q := ns / tick
	if ns%tick > 0 {
		q++
	}
	return q
}

// Add schedules e to be released at due. It reports false, and leaves e out
// of the wheel, when due is not after the wheel's current tick: such an
// entry is due already and the caller should treat it as released. Adding an
// entry that is still pending panics: cancel it first.
func (w *Wheel[T]) Add(e *Entry[T], due time.Time) bool {
	if e.bucket != nil {
		panic("wheel: Add of a pending entry")
	}
	e.due = w.toTickCeil(due)
	if !w.insert(e) {
		return false
	}
	w.len++
	return true
}

// insert places e in the finest level whose interval reaches it.
func (w *Wheel[T]) insert(e *Entry[T]) bool {
	for i := 0; ; i++ {
		if i == len(w.levels) {
			below := w.levels[i-1]
			w.levels = append(w.levels, w.newLevel(below.interval, below.currentTime))
		}
		l := w.levels[i]
		if e.due < l.currentTime+l.tick {
			// Only level 0 can see this: an entry that reaches level i>0
			// is at least one level-(i-1) interval ahead, which is one
			// level-i tick.
			return false
		}
		if e.due < l.currentTime+l.interval {
			virtual := e.due / l.tick
			b := &l.buckets[virtual%w.size]
			b.push(e)
			w.queueBucket(b, virtual*l.tick)
			return true
		}
	}
}

// Cancel removes e from the wheel. It reports whether e was pending.
func (w *Wheel[T]) Cancel(e *Entry[T]) bool {
	if e.bucket == nil {
		return false
	}
	e.bucket.remove(e)
	w.len--
	return true
}

// Next returns the time at which the wheel next has work (a bucket to
// release or cascade), and false when the wheel is empty. The owner sleeps
// until then, or until it adds an earlier entry.
func (w *Wheel[T]) Next() (time.Time, bool) {
	for len(w.queue) > 0 {
		b := w.queue[0]
		if b.head.next != &b.head {
			return time.Unix(0, b.expiration*int64(w.tick)), true
		}
		w.popBucket() // emptied by cancels: nothing to wait for
	}
	return time.Time{}, false
}

// Advance moves the clock to now and calls release, in due order (bucket by
// bucket; entries of one tick in the order they were added), for every entry
// whose due time is at or before now. release must not add to or cancel
// from the wheel; collect what it needs and act after Advance returns.
func (w *Wheel[T]) Advance(now time.Time, release func(*Entry[T])) {
	nowTick := w.toTickFloor(now)
	for len(w.queue) > 0 && w.queue[0].expiration <= nowTick {
		b := w.popBucket()
		w.advanceClock(b.expiration)
		for e := b.head.next; e != &b.head; e = b.head.next {
			b.remove(e)
			if !w.insert(e) {
				w.len--
				release(e)
			}
		}
	}
	w.advanceClock(nowTick)
}

// advanceClock moves every level's clock forward to t (never back). Safe
// only once every bucket due at or before t has been flushed.
func (w *Wheel[T]) advanceClock(t int64) {
	for _, l := range w.levels {
		if t >= l.currentTime+l.tick {
			l.currentTime = t - t%l.tick
		}
	}
}

// queueBucket gives b the expiration exp and puts it on the heap.
func (w *Wheel[T]) queueBucket(b *bucket[T], exp int64) {
	if b.heapIndex >= 0 {
		if b.expiration == exp {
			return
		}
		// Not reachable by the level invariants, kept for safety.
		b.expiration = exp
		w.fix(b.heapIndex)
		return
	}
	b.expiration = exp
	b.heapIndex = len(w.queue)
	w.queue = append(w.queue, b)
	w.up(b.heapIndex)
}

func (w *Wheel[T]) popBucket() *bucket[T] {
	q := w.queue
	b := q[0]
	last := len(q) - 1
	w.swap(0, last)
	w.queue = q[:last]
	if last > 0 {
		w.down(0)
	}
	b.heapIndex = -1
	return b
}

func (w *Wheel[T]) fix(i int) {
	if !w.down(i) {
		w.up(i)
	}
}

func (w *Wheel[T]) swap(i, j int) {
	q := w.queue
	q[i], q[j] = q[j], q[i]
	q[i].heapIndex = i
	q[j].heapIndex = j
}

func (w *Wheel[T]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if w.queue[parent].expiration <= w.queue[i].expiration {
			return
		}
		w.swap(parent, i)
		i = parent
	}
}

func (w *Wheel[T]) down(i int) bool {
	start, n := i, len(w.queue)
	for {
		left := 2*i + 1
		if left >= n {
			break
		}
		least := left
		if right := left + 1; right < n && w.queue[right].expiration < w.queue[left].expiration {
			least = right
		}
		if w.queue[i].expiration <= w.queue[least].expiration {
			break
		}
		w.swap(i, least)
		i = least
	}
	return i > start
}
