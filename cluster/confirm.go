package cluster

import (
	"sync"
	"time"
)

// confirmTimeout bounds how long a confirmation waits to be started.
const confirmTimeout = 5 * time.Second

// leadershipConfirmer confirms that a replica still leads by committing a
// raft barrier in its term: only a leader that a quorum still follows can
// commit it. (raft's VerifyLeader is not enough: a heartbeat answered
// before the leader was paused, and read after it woke, votes for a
// verification begun after the answer was sent, so a deposed leader could
// confirm itself.) Callers share barriers: one that asks while a barrier
// is under way waits for the next, which starts after it asked, so every
// confirmation is of a moment after its call.
type leadershipConfirmer struct {
	barrier func() error

	mu      sync.Mutex
	running bool
	next    *confirmation // gathers the callers of the next barrier
}

type confirmation struct {
	done    chan struct{}
	err     error
	callers int // waiting for it
}

func (c *leadershipConfirmer) confirm() error {
	c.mu.Lock()
	if c.next == nil {
		c.next = &confirmation{done: make(chan struct{})}
	}
	mine := c.next
	mine.callers++
	if !c.running {
		c.running = true
		go c.run()
	}
	c.mu.Unlock()
	<-mine.done
	return mine.err
}

// run commits barriers while callers wait for one.
func (c *leadershipConfirmer) run() {
	for {
		c.mu.Lock()
		call := c.next
		c.next = nil
		if call == nil {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		call.err = c.barrier()
		close(call.done)
	}
}
