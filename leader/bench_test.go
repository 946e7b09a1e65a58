package leader

import (
	"runtime"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"

	"github.com/google/uuid"
)

// BenchmarkWheelMemory measures the leader's heap per task loaded into
// the wheel (the tasks inside the horizon): each op loads one task with a
// server-generated id, as the loader would, and the live heap is compared
// before and after. Tasks beyond the horizon stay in bbolt and cost no
// heap at all.
func BenchmarkWheelMemory(b *testing.B) {
	const n = 1_000_000
	now := time.Unix(1_700_000_000, 0)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	b.ResetTimer()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := New(queuelessStore{}, Config{}, 1, now)
		route := l.routeOf(fsm.Route{Queue: "default", Host: "127.0.0.1:8080"})
		for i, id := range ids {
			// The loader copies each id out of bbolt.
			l.add(packID(string([]byte(id))), now.Add(time.Duration(i)*time.Microsecond+time.Second).UnixNano(), route)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/task")
		runtime.KeepAlive(l)
	}
}

// BenchmarkPackID is the cost of packing a server-made id, paid for
// every task the loader loads and every change the wheel hears of.
func BenchmarkPackID(b *testing.B) {
	id := uuid.Must(uuid.NewV7()).String()
	b.ReportAllocs()
	for b.Loop() {
		_ = packID(id)
	}
}

// queuelessStore knows no queue settings and no running tasks; nothing
// else may be asked.
type queuelessStore struct{ Store }

func (queuelessStore) Queue(name string) (*fsm.QueueInfo, error) { return nil, fsm.ErrNotFound }
func (queuelessStore) Running() ([]*fsmpb.Task, error)           { return nil, nil }
