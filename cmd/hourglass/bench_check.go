package main

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// checker is the benchmark's webhook receiver and its verdict: it knows
// every task the run created (by index, carried in the payload), when each
// is due and whether its create was acknowledged, and counts what arrives.
type checker struct {
	path  string  // deliveries of this run arrive here
	due   []int64 // unix ns, by task index
	acked []atomic.Bool
	count []atomic.Uint32
	first []atomic.Int64 // unix ns of the first delivery

	received  atomic.Int64 // every delivery of this run
	early     atomic.Int64 // deliveries received before their due time
	malformed atomic.Int64 // deliveries of this run naming no task of it
	foreign   atomic.Int64 // deliveries to another path (an earlier run's tasks)
	// pullErrors counts failed lease and ack requests (--pull).
	pullErrors atomic.Int64

	bufs sync.Pool
}

func newChecker(run string, due []int64) *checker {
	n := len(due)
	return &checker{
		path:  "/bench/" + run,
		due:   due,
		acked: make([]atomic.Bool, n),
		count: make([]atomic.Uint32, n),
		first: make([]atomic.Int64, n),
		bufs:  sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
}

// appendPayload appends task i's payload: its index, padded to size
// bytes (or what the index needs).
func appendPayload(dst []byte, i, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"i":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `,"pad":"`...)
	for len(dst)-start+2 < size {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// taskIndex reads the index back out of a payload made by appendPayload.
func taskIndex(body []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(body, []byte(`{"i":`))
	if !ok {
		return 0, false
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0, false
	}
	i, err := strconv.Atoi(string(rest[:end]))
	return i, err == nil
}

func (c *checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	if r.URL.Path != c.path {
		c.foreign.Add(1)
		w.WriteHeader(http.StatusOK) // an earlier run's task: done with, too
		return
	}
	buf := c.bufs.Get().(*bytes.Buffer)
	defer c.bufs.Put(buf)
	buf.Reset()
	_, err := io.Copy(buf, io.LimitReader(r.Body, 1<<20))
	i, ok := taskIndex(buf.Bytes())
	if err != nil || !ok || i < 0 || i >= len(c.due) {
		c.malformed.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	c.observe(i, now)
	w.WriteHeader(http.StatusOK)
}

// observe counts task i as delivered (or leased) at now (unix ns).
func (c *checker) observe(i int, now int64) {
	c.received.Add(1)
	if now < c.due[i] {
		c.early.Add(1)
	}
	if c.count[i].Add(1) == 1 {
		c.first[i].Store(now)
	}
}

// verdict is what the checker saw of the tasks whose creates were
// acknowledged.
type verdict struct {
	Acknowledged int64 `json:"acknowledged"`
	Delivered    int64 `json:"delivered"`
	Lost         int64 `json:"lost"`
	Early        int64 `json:"early"`
	Duplicates   int64 `json:"duplicates"`
	// Unacknowledged is how many tasks whose create failed were delivered
	// anyway (allowed: the create may have committed).
	Unacknowledged int64 `json:"unacknowledged_delivered"`
	Malformed      int64 `json:"malformed"`
}

func (v verdict) ok() bool {
	return v.Acknowledged > 0 && v.Lost == 0 && v.Early == 0 && v.Malformed == 0
}

func (c *checker) verdict() verdict {
	v := verdict{Early: c.early.Load(), Malformed: c.malformed.Load()}
	for i := range c.due {
		n := int64(c.count[i].Load())
		if !c.acked[i].Load() {
			if n > 0 {
				v.Unacknowledged++
			}
			continue
		}
		v.Acknowledged++
		if n == 0 {
			v.Lost++
			continue
		}
		v.Delivered++
		v.Duplicates += n - 1
	}
	return v
}

// undelivered counts acknowledged tasks not yet delivered.
func (c *checker) undelivered() int {
	n := 0
	for i := range c.due {
		if c.acked[i].Load() && c.count[i].Load() == 0 {
			n++
		}
	}
	return n
}

// deliveries returns, for every delivered acknowledged task, how long after
// its due time it first arrived, and when (unix ns).
func (c *checker) deliveries() (late []time.Duration, at []int64) {
	late = make([]time.Duration, 0, len(c.due))
	at = make([]int64, 0, len(c.due))
	for i := range c.due {
		t := c.first[i].Load()
		if t == 0 || !c.acked[i].Load() {
			continue
		}
		late = append(late, time.Duration(t-c.due[i]))
		at = append(at, t)
	}
	return late, at
}
