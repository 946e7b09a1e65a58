package scheduler

import (
	"runtime"
	"strings"
	"testing"
	"time"

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
	s := New(nil, nil, Config{})
	b.ResetTimer()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := s.newLoop(1, now)
		for i, id := range ids {
			// The loader copies each id out of bbolt.
			l.add(packID(string([]byte(id))), now.Add(time.Duration(i)*time.Microsecond+time.Second).UnixNano())
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/task")
		runtime.KeepAlive(l)
	}
}

func TestPackID(t *testing.T) {
	v7 := uuid.Must(uuid.NewV7()).String()
	for _, tc := range []struct {
		id     string
		packed bool
	}{
		{v7, true},
		{strings.ToUpper(v7), false}, // unpacking would lower its case
		{"order-42-timeout", false},
		{"0123456789abcdef", false},
		{strings.Repeat("x", 36), false},
		{"", false},
	} {
		key := packID(tc.id)
		if packed := key != tc.id; packed != tc.packed {
			t.Errorf("packID(%q) = %q: packed %v, want %v", tc.id, key, packed, tc.packed)
		}
		if tc.packed && len(key) != 17 {
			t.Errorf("packID(%q) is %d bytes, want 17", tc.id, len(key))
		}
		if got := unpackID(key); got != tc.id {
			t.Errorf("unpackID(packID(%q)) = %q", tc.id, got)
		}
	}
}
