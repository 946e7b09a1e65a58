package leader

// fifo is a first-in first-out queue on a slice: taking from it clears
// the slot (so the GC can free what it held) and the slice is reused
// once empty, or compacted when most of it is taken.
type fifo[T any] struct {
	items []T
	head  int // items[:head] are taken
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }

func (q *fifo[T]) push(v T) { q.items = append(q.items, v) }

// peek is the oldest item; the queue must not be empty.
func (q *fifo[T]) peek() T { return q.items[q.head] }

// pop takes the oldest item; the queue must not be empty.
func (q *fifo[T]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	return v
}
