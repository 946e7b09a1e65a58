package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// StateName is the lower-case API name of a state ("scheduled", ...).
func StateName(s fsmpb.State) string {
	if s == fsmpb.State_STATE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(s.String())
}

// ParseState reads an API state name; ok is false for an unknown name.
func ParseState(name string) (fsmpb.State, bool) {
	v, ok := fsmpb.State_value[strings.ToUpper(name)]
	if !ok || v == 0 {
		return 0, false
	}
	return fsmpb.State(v), true
}

// attachPayload gives t its payload from payloads (which may be nil: a
// file from before schema 5) if its record holds none, and returns the
// number of bytes it attached.
func attachPayload(payloads *bolt.Bucket, t *fsmpb.Task) int {
	if len(t.Payload) == 0 && payloads != nil {
		t.Payload = bytes.Clone(payloads.Get([]byte(t.Id)))
		return len(t.Payload)
	}
	return 0
}

// Get returns the task with id, or ErrNotFound.
func (f *FSM) Get(id string) (*fsmpb.Task, error) {
	var t *fsmpb.Task
	err := f.view(func(tx *bolt.Tx) error {
		var err error
		t, err = newApplier(tx).get(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, errorf(ErrNotFound, "no task %q", id)
	}
	return t, nil
}

// ListQuery selects tasks. Zero values mean "any". After is the cursor from
// a previous page (opaque to callers; pass it back with the same filters).
type ListQuery struct {
	Queue string
	State fsmpb.State
	After []byte
	Limit int
	// MaxBytes, when set, ends the page early once the records read add up
	// to this many bytes (a page holds at least one task), so that a page
	// of large payloads costs bounded memory.
	MaxBytes int
}

// List returns up to q.Limit tasks and the cursor for the next page (nil
// when there is none). Without a state filter tasks come ordered by id
// (creation time for generated ids); with one, by state and then id.
func (f *FSM) List(q ListQuery) ([]*fsmpb.Task, []byte, error) {
	var out []*fsmpb.Task
	var next []byte
	size := 0
	full := func() bool { return len(out) >= q.Limit || q.MaxBytes > 0 && size >= q.MaxBytes }
	err := f.view(func(tx *bolt.Tx) error {
		tasks, payloads := tx.Bucket(bucketTasks), tx.Bucket(bucketPayloads)
		load := func(id []byte) error {
			raw := tasks.Get(id)
			t := new(fsmpb.Task)
			if err := proto.Unmarshal(raw, t); err != nil {
				return fmt.Errorf("decode task %q: %w", id, err)
			}
			out = append(out, t)
			size += len(raw) + attachPayload(payloads, t)
			return nil
		}
		if q.Queue == "" && q.State == 0 {
			var k []byte
			c := tasks.Cursor()
			for k, _ = seekAfter(c, q.After); k != nil && !full(); k, _ = c.Next() {
				if err := load(k); err != nil {
					return err
				}
			}
			if k != nil {
				next = []byte(out[len(out)-1].Id)
			}
			return nil
		}
		states := []fsmpb.State{q.State}
		if q.State == 0 {
			states = states[:0]
			for s := fsmpb.State_SCHEDULED; s <= lastState; s++ {
				states = append(states, s)
			}
		}
		c := tx.Bucket(bucketByState).Cursor()
		var last []byte
		for _, s := range states {
			prefix := statePrefix(s, q.Queue)
			var k []byte
			if bytes.HasPrefix(q.After, prefix) {
				k, _ = seekAfter(c, q.After)
			} else if len(q.After) > 0 && q.After[0] > byte(s) {
				continue // the cursor is past this state
			} else {
				k, _ = c.Seek(prefix)
			}
			for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if full() {
					next = last
					return nil
				}
				if err := load(k[bytes.IndexByte(k, 0)+1:]); err != nil {
					return err
				}
				last = bytes.Clone(k)
			}
		}
		return nil
	})
	return out, next, err
}

func seekAfter(c *bolt.Cursor, after []byte) ([]byte, []byte) {
	if len(after) == 0 {
		return c.First()
	}
	k, v := c.Seek(after)
	if bytes.Equal(k, after) {
		return c.Next()
	}
	return k, v
}

// DueKey is a position in the due index: a due time and a task id.
type DueKey struct {
	At int64
	ID string
}

// Less orders due keys as the index does.
func (k DueKey) Less(o DueKey) bool {
	return k.At < o.At || k.At == o.At && k.ID < o.ID
}

// ScanDue calls fn, in due order, for scheduled tasks after the key from
// (or from the start when from is nil) and due at or before until, at most
// limit of them, until fn returns false. It returns how many fn accepted.
// The route is only valid during the call.
func (f *FSM) ScanDue(from *DueKey, until int64, limit int, fn func(DueKey, Route) bool) (int, error) {
	n := 0
	err := f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		seek := func() ([]byte, []byte) {
			if from == nil {
				return c.First()
			}
			return seekAfter(c, timeKey(from.At, from.ID))
		}
		for k, v := seek(); k != nil && n < limit; k, v = c.Next() {
			at, id := splitTimeKey(k)
			if at > until {
				break
			}
			r, ok := decodeRoute(v)
			if !ok {
				return fmt.Errorf("due index entry of task %q: malformed route %x", id, v)
			}
			if !fn(DueKey{At: at, ID: id}, r) {
				break
			}
			n++
		}
		return nil
	})
	return n, err
}

// Running returns the tasks whose attempt is in flight.
func (f *FSM) Running() ([]*fsmpb.Task, error) {
	var out []*fsmpb.Task
	err := f.view(func(tx *bolt.Tx) error {
		a := newApplier(tx)
		prefix := statePrefix(fsmpb.State_RUNNING, "")
		c := a.byState.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			t, err := a.get(string(k[bytes.IndexByte(k, 0)+1:]))
			if err != nil {
				return err
			}
			if t != nil {
				out = append(out, t)
			}
		}
		return nil
	})
	return out, err
}

// RouteOf is the route of task t, as the due index holds it.
func RouteOf(t *fsmpb.Task) Route { return routeOf(t) }

// QueueInfo is a queue's settings (nil when it has none stored: the
// defaults) and how many of its tasks are in each state.
type QueueInfo struct {
	Name     string
	Settings *fsmpb.Queue
	Counts   Counts
}

// Queue returns the queue name, or ErrNotFound when it was never used nor
// configured.
func (f *FSM) Queue(name string) (*QueueInfo, error) {
	var info *QueueInfo
	err := f.view(func(tx *bolt.Tx) error {
		q, err := newApplier(tx).queue(name)
		if err != nil || q == nil {
			return err
		}
		info = &QueueInfo{Name: name, Settings: q, Counts: queueCounts(tx, name)}
		return nil
	})
	if err == nil && info == nil {
		err = errorf(ErrNotFound, "no queue %q", name)
	}
	return info, err
}

// Queues returns every queue, by name.
func (f *FSM) Queues() ([]*QueueInfo, error) {
	queues, _, err := f.QueuesPage("", math.MaxInt)
	return queues, err
}

// QueuesPage returns up to limit queues by name, after the name after
// (empty: from the first), and the name to go on from (empty: no more).
func (f *FSM) QueuesPage(after string, limit int) ([]*QueueInfo, string, error) {
	var out []*QueueInfo
	var next string
	err := f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketQueues).Cursor()
		k, v := c.Seek([]byte(after))
		if after != "" && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil; k, v = c.Next() {
			if len(out) == limit {
				next = out[len(out)-1].Name
				return nil
			}
			q := new(fsmpb.Queue)
			if err := proto.Unmarshal(v, q); err != nil {
				return fmt.Errorf("decode queue %q: %w", k, err)
			}
			out = append(out, &QueueInfo{Name: string(k), Settings: q, Counts: queueCounts(tx, string(k))})
		}
		return nil
	})
	return out, next, err
}

// QueueRoom says which of names are not queues yet (a task or a setting
// for one of them would create it) and, only when some are not, how many
// queues exist (counting them reads the whole queue bucket).
func (f *FSM) QueueRoom(names []string) (unknown []string, existing int, err error) {
	err = f.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQueues)
		for _, name := range names {
			if b.Get([]byte(name)) == nil {
				unknown = append(unknown, name)
			}
		}
		if len(unknown) > 0 {
			existing = b.Stats().KeyN
		}
		return nil
	})
	return unknown, existing, err
}

func queueCounts(tx *bolt.Tx, queue string) Counts {
	counts := newCounts()
	prefix := []byte(queue + "\x00")
	c := tx.Bucket(bucketCounts).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) == len(prefix)+1 && len(v) == 8 {
			if name := StateName(fsmpb.State(k[len(prefix)])); name != "" {
				counts[name] = binary.BigEndian.Uint64(v)
			}
		}
	}
	return counts
}

// Selector picks the scheduled tasks of a queue for a bulk operation:
// optionally only those named Name, and due (their next attempt) within
// [From, To) (zero: unbounded).
type Selector struct {
	Queue    string
	Name     string
	From, To int64
}

// SelectScheduled returns up to limit ids of the scheduled tasks matching
// sel, after the id `after` (empty: from the start), in id order, and
// whether more may follow.
func (f *FSM) SelectScheduled(sel Selector, after string, limit int) ([]string, bool, error) {
	var ids []string
	more := false
	err := f.view(func(tx *bolt.Tx) error {
		a := newApplier(tx)
		prefix := statePrefix(fsmpb.State_SCHEDULED, sel.Queue)
		c := a.byState.Cursor()
		k, _ := c.Seek(append(bytes.Clone(prefix), after...))
		if after != "" && bytes.HasPrefix(k, prefix) && bytes.Equal(k[len(prefix):], []byte(after)) {
			k, _ = c.Next()
		}
		filtered := sel.Name != "" || sel.From != 0 || sel.To != 0
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(ids) == limit {
				more = true
				return nil
			}
			id := string(k[len(prefix):])
			if filtered {
				t, err := a.get(id)
				if err != nil {
					return err
				}
				if t == nil || sel.Name != "" && t.Name != sel.Name || sel.From != 0 && t.DueAt < sel.From || sel.To != 0 && t.DueAt >= sel.To {
					continue
				}
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids, more, err
}

// DueCounts counts the scheduled tasks whose next attempt is due in
// [from, to), in buckets of step nanoseconds from from. It reads every
// entry of the due index in the range.
func (f *FSM) DueCounts(from, to, step int64) ([]uint64, error) {
	if step <= 0 || to <= from {
		return nil, fmt.Errorf("due counts: want step > 0 and to after from")
	}
	counts := make([]uint64, (to-from+step-1)/step)
	err := f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.Seek(timeKey(from, "")); k != nil; k, _ = c.Next() {
			at, _ := splitTimeKey(k)
			if at >= to {
				break
			}
			counts[(at-from)/step]++
		}
		return nil
	})
	return counts, err
}

// DueBacklog counts the scheduled tasks due at or before now (due, not
// yet fired) and returns the earliest due time among them (0 when none).
// It reads every such entry of the due index: the cost grows with the
// backlog, not with the tasks held.
func (f *FSM) DueBacklog(now int64) (count uint64, oldest int64, err error) {
	err = f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			at, _ := splitTimeKey(k)
			if at > now {
				break
			}
			if count == 0 {
				oldest = at
			}
			count++
		}
		return nil
	})
	return count, oldest, err
}
