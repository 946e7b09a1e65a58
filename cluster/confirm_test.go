package cluster

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConfirmationsStartAfterTheirCall: a caller that asks while a barrier
// is under way is answered by a later barrier, never by the one in flight
// (whose answer may predate the call); callers that wait together share
// one barrier.
func TestConfirmationsStartAfterTheirCall(t *testing.T) {
	var started atomic.Int64
	release := make(chan error)
	c := &leadershipConfirmer{barrier: func() error {
		started.Add(1)
		return <-release
	}}
	first := make(chan error, 1)
	go func() { first <- c.confirm() }()
	waitFor(t, func() bool { return started.Load() == 1 })

	// Three callers while the first barrier is in flight.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = c.confirm() })
	}
	waitFor(t, func() bool { // all three wait for the next barrier
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.next != nil && c.next.callers == 3
	})
	release <- nil // the first barrier: only the first caller's
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return started.Load() == 2 })
	deposed := errors.New("deposed")
	release <- deposed // the second barrier answers the three
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, deposed) {
			t.Fatalf("caller %d: %v, want the second barrier's answer", i, err)
		}
	}
	if n := started.Load(); n != 2 {
		t.Fatalf("%d barriers for two rounds of callers", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
