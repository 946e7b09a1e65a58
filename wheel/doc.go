// Package wheel is a hierarchical timing wheel: a priority structure for
// timers with O(1) cancel, O(levels) add, and expiry in batches of one tick.
// It knows nothing of tasks, raft or HTTP, and it has no clock of its own:
// the owner passes "now" to Advance, so tests drive it with any time they
// like. It is not safe for concurrent use; one goroutine owns a wheel.
//
// # The simple wheel
//
// A simple timing wheel is a circular array of buckets, each holding a
// doubly linked list of entries. With a tick of 1 ms and 512 buckets, the
// wheel covers an interval of 512 ms: an entry due at tick t (t counted in
// ticks since the epoch) goes to bucket t mod 512, and when the clock reaches
// t every entry in that bucket is released at once. Adding is O(1) (append to
// a list), cancelling is O(1) (unlink from the list), and releasing costs
// O(1) per entry — against O(log n) for each of these in a binary heap.
//
// # Why levels
//
// A simple wheel only holds entries due within one interval. Tasks may be
// due in an hour or a year, so an entry beyond the interval goes to an
// overflow wheel whose tick is the whole interval of the wheel below it: level
// 0 ticks every 1 ms (interval 512 ms), level 1 every 512 ms (interval about
// 4.4 minutes), level 2 every 4.4 minutes (interval about 37 hours), and so
// on. Levels are created on demand, so a wheel holding only near entries has
// one level. Add walks up the levels until the entry fits: O(levels), and
// levels grow with the logarithm (base 512) of the furthest delay.
//
// When the clock reaches a bucket of level 1 or higher, that bucket is
// flushed: each of its entries is added again, and now falls into a finer
// level, until it reaches level 0 and expires. An entry is moved at most once
// per level.
//
// # Sleeping instead of ticking
//
// Every non-empty bucket carries the tick at which it must be flushed, and
// the buckets waiting to be flushed sit in a min-heap keyed on that tick
// (Kafka's DelayQueue). Next reports the earliest of them, so the owner
// sleeps until then rather than waking every millisecond to look at empty
// buckets. The heap holds buckets, not entries: at most 512 per level, so its
// O(log n) is over a handful of items however many entries are pending.
//
// # A worked example
//
// Tick 1 ms, 512 buckets per level, the clock at tick 1000.
//
//   - Add A due at tick 1003: 1003 < 1000+512, so level 0, bucket 1003 mod
//     512 = 491. The bucket's expiration becomes 1003 and it enters the heap.
//   - Add B due at tick 5000: beyond level 0 (1000+512). Level 1 ticks every
//     512 ms and its clock is floor(1000/512)*512 = 512; 5000 < 512+512*512,
//     so level 1, bucket floor(5000/512) mod 512 = 9, expiration 9*512 =
//     4608. That bucket enters the heap too.
//   - Next reports 1003. The owner sleeps 3 ms and calls Advance(1003): the
//     bucket of A is popped from the heap, flushed, and A is released.
//   - Next reports 4608. At Advance(4608) the level-1 bucket is flushed: B
//     is added again, now 5000 < 4608+512, so it lands in level-0 bucket 5000
//     mod 512 = 392 with expiration 5000.
//   - Next reports 5000; Advance(5000) releases B.
//
// Cancelling B at any point unlinks it from whichever bucket holds it.
//
// # Resolution and never early
//
// A due time is rounded up to the next whole tick, and an entry is released
// only once Advance has been called with a time at or past its tick, so an
// entry is never released before its due time, and at most one tick (plus
// however late the owner calls Advance) after it.
package wheel
