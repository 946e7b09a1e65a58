package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// proposer is the group commit: it coalesces the commands that arrive while
// earlier raft entries are in flight into one entry (up to a count and size
// cap), and hands each caller its own command's result once the entry is
// applied. Callers marshal their commands themselves, in parallel; the
// proposer only concatenates them (a repeated field's elements can be
// appended as they are).
type proposer struct {
	raft     *raft.Raft
	in       chan *proposal
	inflight chan *pendingEntry
	maxCmds  int
	maxBytes int
	stop     chan struct{}
	wg       sync.WaitGroup
	// lingering is how many proposals wait for others, for tests.
	lingering atomic.Int32
	// applied observes how long each entry took to apply, in seconds.
	applied prometheus.Observer
}

type proposal struct {
	cmd  []byte // a marshalled fsmpb.Command
	done chan proposalResult
	// until, if set, is how long the proposal may wait for others to
	// share its entry (see ProposeWithin).
	until time.Time
}

type proposalResult struct {
	value any
	err   error
}

type pendingEntry struct {
	submitted time.Time
	future    raft.ApplyFuture
	proposals []*proposal
}

// entryField is the tag of Entry.commands (field 1, bytes).
var entryField = protowire.AppendTag(nil, 1, protowire.BytesType)

func newProposer(r *raft.Raft, maxInflight, maxCmds, maxBytes int, applied prometheus.Observer) *proposer {
	p := &proposer{
		raft:     r,
		in:       make(chan *proposal, maxCmds),
		inflight: make(chan *pendingEntry, maxInflight),
		maxCmds:  maxCmds,
		maxBytes: maxBytes,
		stop:     make(chan struct{}),
		applied:  applied,
	}
	p.wg.Add(2)
	go p.collect()
	go p.await()
	return p
}

func (p *proposer) close() {
	close(p.stop)
	p.wg.Wait()
}

// lingerMaxBytes: a command this large pays for an entry of its own; it
// does not wait for others, whatever its proposer allowed.
const lingerMaxBytes = 16 << 10

// propose submits cmd and waits for its result. A linger above zero lets
// the command wait that long for others to share its entry, unless it is
// large (lingerMaxBytes): a write that is in no hurry and would otherwise
// pay for an entry, a raft log fsync and a state-machine transaction of
// its own at a steady low rate. A command without a linger that comes
// meanwhile takes the lingering ones along at once.
func (p *proposer) propose(ctx context.Context, cmd *fsmpb.Command, linger time.Duration) (any, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	if len(data) > p.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes encoded, over the limit of %d", ErrTooLarge, len(data), p.maxBytes)
	}
	prop := &proposal{cmd: data, done: make(chan proposalResult, 1)}
	if linger > 0 && len(data) < lingerMaxBytes {
		prop.until = time.Now().Add(linger)
	}
	select {
	case p.in <- prop:
	case <-ctx.Done():
		return nil, ctx.Err() // not submitted: nothing happened
	case <-p.stop:
		return nil, ErrClosed
	}
	select {
	case r := <-prop.done:
		return r.value, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrIndeterminate, ctx.Err())
	}
}

func (p *proposer) collect() {
	defer p.wg.Done()
	defer close(p.inflight)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var first *proposal
		select {
		case first = <-p.in:
		case <-p.stop:
			p.failQueued()
			return
		}
		batch := []*proposal{first}
		size := len(first.cmd)
		until := first.until // zero: go once nothing more is queued
	drain:
		for len(batch) < p.maxCmds {
			var next *proposal
			select {
			case next = <-p.in:
			default:
				if until.IsZero() {
					break drain
				}
				// Every command in the batch may wait: for more, up to
				// the earliest of their lingers.
				timer.Reset(time.Until(until))
				p.lingering.Store(int32(len(batch)))
				select {
				case next = <-p.in:
					timer.Stop()
				case <-timer.C:
				case <-p.stop:
					timer.Stop() // submitted; the loop fails what is left
				}
				p.lingering.Store(0)
				if next == nil {
					break drain
				}
			}
			if size+len(next.cmd) > p.maxBytes {
				p.submit(batch, size)
				batch, size, until = nil, 0, next.until
			}
			batch = append(batch, next)
			size += len(next.cmd)
			switch {
			case next.until.IsZero() || size >= lingerMaxBytes:
				until = time.Time{}
			case !until.IsZero() && next.until.Before(until):
				until = next.until
			}
		}
		p.submit(batch, size)
	}
}

func (p *proposer) submit(batch []*proposal, size int) {
	data := make([]byte, 0, size+len(batch)*(len(entryField)+3))
	for _, prop := range batch {
		data = append(data, entryField...)
		data = protowire.AppendBytes(data, prop.cmd)
	}
	submitted := time.Now()
	f := p.raft.Apply(data, 10*time.Second)
	// Blocks while maxInflight entries are outstanding: meanwhile more
	// proposals queue up and the next entry carries them all.
	p.inflight <- &pendingEntry{submitted: submitted, future: f, proposals: batch}
}

func (p *proposer) failQueued() {
	for {
		select {
		case prop := <-p.in:
			prop.done <- proposalResult{err: ErrClosed}
		default:
			return
		}
	}
}

func (p *proposer) await() {
	defer p.wg.Done()
	for e := range p.inflight {
		err := translate(e.future.Error())
		if err == nil {
			p.applied.Observe(time.Since(e.submitted).Seconds())
		}
		var results []any
		if err == nil {
			results, _ = e.future.Response().([]any)
			if len(results) != len(e.proposals) {
				err = fmt.Errorf("%w: entry %d was applied before (answered %d results for %d commands)",
					ErrIndeterminate, e.future.Index(), len(results), len(e.proposals))
			}
		}
		for i, prop := range e.proposals {
			if err != nil {
				prop.done <- proposalResult{err: err}
				continue
			}
			prop.done <- proposalResult{value: results[i]}
		}
	}
}
