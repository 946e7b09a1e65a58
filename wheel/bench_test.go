package wheel

import (
	"container/heap"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// The benchmarks compare the wheel with the obvious alternative, a
// container/heap of timers, at one million pending entries spread over an
// hour (the shape of a scheduler's loaded horizon).

const pending = 1_000_000

func spread(rng *rand.Rand) time.Duration {
	return time.Duration(rng.Int64N(int64(time.Hour)))
}

// heapTimers is the baseline: a binary min-heap with index tracking so
// entries can be cancelled in O(log n).
type heapTimer struct {
	due   int64
	index int
}

type heapTimers []*heapTimer

func (h heapTimers) Len() int           { return len(h) }
func (h heapTimers) Less(i, j int) bool { return h[i].due < h[j].due }
func (h heapTimers) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *heapTimers) Push(x any) { t := x.(*heapTimer); t.index = len(*h); *h = append(*h, t) }
func (h *heapTimers) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

func filledWheel(b *testing.B, rng *rand.Rand) (*Wheel[int], []Entry[int]) {
	w, err := New[int](time.Millisecond, 512, epoch)
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]Entry[int], pending)
	for i := range entries {
		w.Add(&entries[i], epoch.Add(time.Millisecond+spread(rng)))
	}
	return w, entries
}

func filledHeap(rng *rand.Rand) (*heapTimers, []heapTimer) {
	timers := make([]heapTimer, pending)
	h := make(heapTimers, 0, pending+1)
	for i := range timers {
		timers[i].due = epoch.Add(time.Millisecond + spread(rng)).UnixNano()
		h = append(h, &timers[i])
		timers[i].index = i
	}
	heap.Init(&h)
	return &h, timers
}

// BenchmarkAdd measures adding entries to a wheel that already holds a
// million. Every million adds the added entries are cancelled again
// (untimed), so the size stays near a million and nothing is allocated.
func BenchmarkAdd(b *testing.B) {
	b.Run("wheel", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		w, _ := filledWheel(b, rng)
		batch := make([]Entry[int], pending)
		dues := make([]time.Time, pending)
		for i := range dues {
			dues[i] = epoch.Add(time.Millisecond + spread(rng))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			j := i % pending
			if j == 0 && i > 0 {
				b.StopTimer()
				for k := range batch {
					w.Cancel(&batch[k])
				}
				b.StartTimer()
			}
			w.Add(&batch[j], dues[j])
		}
	})
	b.Run("heap", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		h, _ := filledHeap(rng)
		batch := make([]heapTimer, pending)
		for i := range batch {
			batch[i].due = epoch.Add(time.Millisecond + spread(rng)).UnixNano()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			j := i % pending
			if j == 0 && i > 0 {
				b.StopTimer()
				for k := range batch {
					heap.Remove(h, batch[k].index)
				}
				b.StartTimer()
			}
			heap.Push(h, &batch[j])
		}
	})
}

// BenchmarkCancel measures cancelling entries out of a million; the
// structure is refilled (untimed) when it runs low.
func BenchmarkCancel(b *testing.B) {
	b.Run("wheel", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(3, 4))
		w, entries := filledWheel(b, rng)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i > 0 && i%(pending/2) == 0 {
				b.StopTimer()
				w, entries = filledWheel(b, rng)
				b.StartTimer()
			}
			w.Cancel(&entries[i%(pending/2)*2])
		}
	})
	b.Run("heap", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(3, 4))
		h, timers := filledHeap(rng)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i > 0 && i%(pending/2) == 0 {
				b.StopTimer()
				h, timers = filledHeap(rng)
				b.StartTimer()
			}
			heap.Remove(h, timers[i%(pending/2)*2].index)
		}
	})
}

// BenchmarkExpire measures releasing entries one by one, in due order, out
// of a million (the cost per released entry).
func BenchmarkExpire(b *testing.B) {
	b.Run("wheel", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(5, 6))
		w, _ := filledWheel(b, rng)
		released := 0
		b.ReportAllocs()
		b.ResetTimer()
		for released < b.N {
			if w.Len() == 0 {
				b.StopTimer()
				w, _ = filledWheel(b, rng)
				b.StartTimer()
			}
			next, _ := w.Next()
			w.Advance(next, func(*Entry[int]) { released++ })
		}
	})
	b.Run("heap", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(5, 6))
		h, _ := filledHeap(rng)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if h.Len() == 0 {
				b.StopTimer()
				h, _ = filledHeap(rng)
				b.StartTimer()
			}
			heap.Pop(h)
		}
	})
}

// BenchmarkBurstDispatch puts 100k entries at one instant among a million
// pending and measures, for each of the 100k, how long after the start of
// the release it was handed out. It reports the p50 and p99 of that delay.
func BenchmarkBurstDispatch(b *testing.B) {
	const burst = 100_000
	instant := epoch.Add(30 * time.Minute)
	report := func(b *testing.B, lat []time.Duration) {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Run("wheel", func(b *testing.B) {
		var all []time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			rng := rand.New(rand.NewPCG(7, uint64(i)))
			w, err := New[int](time.Millisecond, 512, epoch)
			if err != nil {
				b.Fatal(err)
			}
			entries := make([]Entry[int], pending)
			for j := range entries {
				due := epoch.Add(time.Millisecond + spread(rng))
				if j < burst {
					due = instant
				}
				entries[j].Value = j
				w.Add(&entries[j], due)
			}
			w.Advance(instant.Add(-time.Millisecond), func(*Entry[int]) {})
			lat := make([]time.Duration, 0, burst)
			b.StartTimer()
			start := time.Now()
			w.Advance(instant, func(e *Entry[int]) {
				if e.Value < burst {
					lat = append(lat, time.Since(start))
				}
			})
			b.StopTimer()
			if len(lat) != burst {
				b.Fatalf("released %d of the burst, want %d", len(lat), burst)
			}
			all = append(all, lat...)
		}
		report(b, all)
	})
	b.Run("heap", func(b *testing.B) {
		var all []time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			rng := rand.New(rand.NewPCG(7, uint64(i)))
			h, timers := filledHeap(rng)
			for j := 0; j < burst; j++ {
				timers[j].due = instant.UnixNano()
			}
			heap.Init(h)
			for h.Len() > 0 && (*h)[0].due < instant.UnixNano() {
				heap.Pop(h)
			}
			lat := make([]time.Duration, 0, burst)
			b.StartTimer()
			start := time.Now()
			for h.Len() > 0 && (*h)[0].due <= instant.UnixNano() {
				if t := heap.Pop(h).(*heapTimer); t.due == instant.UnixNano() {
					lat = append(lat, time.Since(start))
				}
			}
			b.StopTimer()
			if len(lat) < burst {
				b.Fatalf("released %d of the burst, want %d", len(lat), burst)
			}
			all = append(all, lat...)
		}
		report(b, all)
	})
}
