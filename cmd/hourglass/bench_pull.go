package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// pull starts --pullers workers that lease this run's tasks as they fall
// due, record when each arrived, and acknowledge them in batches. The
// returned stop ends them once the run is over.
func (b *benchRun) pull(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range b.cfg.pullers {
		wg.Go(func() { b.puller(ctx, w) })
	}
	return func() { cancel(); wg.Wait() }
}

// puller is one pull worker. A lease request that fails (a node down,
// an election) is tried on the next address after a short pause.
func (b *benchRun) puller(ctx context.Context, w int) {
	node := w % len(b.clients)
	req := client.LeaseRequest{Max: b.cfg.leaseMax, Wait: "1s", Lease: b.cfg.lease.String()}
	// Acks go out beside the next lease request, a few at a time, as a
	// worker that processes tasks asynchronously would send them.
	var acking sync.WaitGroup
	defer acking.Wait()
	slots := make(chan struct{}, 4)
	for ctx.Err() == nil {
		c := b.clients[node]
		tasks, err := c.LeaseTasks(ctx, b.queue, req)
		now := time.Now().UnixNano()
		if err != nil {
			if ctx.Err() == nil {
				node = (node + 1) % len(b.clients)
				b.chk.pullErrors.Add(1)
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
			continue
		}
		acks := make([]client.AckItem, 0, len(tasks))
		for _, t := range tasks {
			i, ok := taskIndex(t.Payload)
			if !ok || i < 0 || i >= len(b.chk.due) {
				b.chk.malformed.Add(1)
			} else {
				b.chk.observe(i, now)
			}
			acks = append(acks, client.AckItem{ID: t.ID, LeaseToken: t.LeaseToken, Attempt: t.Attempt})
		}
		if len(acks) == 0 {
			continue
		}
		slots <- struct{}{}
		acking.Add(1)
		go func() {
			defer func() { <-slots; acking.Done() }()
			b.ack(context.WithoutCancel(ctx), w, c, acks)
		}()
	}
}

// ack acknowledges one lease's tasks as the SDK's worker does, sending
// again what the server could not take just now, until the leases would
// have run out. Tasks left unacknowledged are offered again when their
// leases run out, and show up as duplicates.
func (b *benchRun) ack(ctx context.Context, w int, c *client.Client, acks []client.AckItem) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.lease)
	defer cancel()
	err := c.AckAll(ctx, acks, func(a client.AckItem, refused *client.ErrorBody) {
		b.chk.pullErrors.Add(1)
		fmt.Fprintf(b.progress, "puller %d: ack of %s refused: %s\n", w, a.ID, refused.Message)
	})
	if err != nil {
		b.chk.pullErrors.Add(1)
		fmt.Fprintf(b.progress, "puller %d: ack %d tasks: %v\n", w, len(acks), err)
	}
}
