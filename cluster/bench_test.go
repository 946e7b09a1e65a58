package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPropose measures creates through the group commit of one real
// node (raft log fsynced, bbolt state), without HTTP: one proposer at a
// time, and 64 at once. Each op is one create.
func BenchmarkPropose(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			n, err := Open(Config{NodeID: "n1", DataDir: b.TempDir(), RaftAddr: "127.0.0.1:0"})
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			led := make(chan struct{})
			var once sync.Once
			n.Start(func(*Group) LeaderFunc {
				return func(ctx context.Context, _ uint64) { once.Do(func() { close(led) }); <-ctx.Done() }
			}, nil)
			select {
			case <-led:
			case <-time.After(10 * time.Second):
				b.Fatal("no leader within 10s")
			}
			first := n.Group(1).Status().CommitIndex
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						if _, err := n.Group(1).Propose(context.Background(), createCmd(fmt.Sprintf("task-%09d", i))); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			b.ReportMetric(float64(b.N)/float64(n.Group(1).Status().CommitIndex-first), "creates/entry")
		})
	}
}
