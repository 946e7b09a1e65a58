package fsm

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

var (
	bucketTasks = []byte("tasks")
	bucketDue   = []byte("due")
	// bucketRunning is schema 2's index of running tasks, dropped by the
	// migration to 3: by_state's running prefix lists the same tasks.
	bucketRunning = []byte("running")
	bucketExpire  = []byte("expire")
	bucketByState = []byte("by_state")
	bucketMeta    = []byte("meta")
	bucketQueues  = []byte("queues")
	bucketCounts  = []byte("counts")
	// Schema 4: schedules (id → Schedule) and schedule_due (next_at ‖ id
	// of each schedule with occurrences still to create).
	bucketSchedules   = []byte("schedules")
	bucketScheduleDue = []byte("schedule_due")
	// Schema 5: payloads (id → payload) of the tasks whose payload is
	// longer than apartPayload bytes, kept out of the task record.
	bucketPayloads = []byte("payloads")

	// requiredBuckets are in every state file this build reads; the
	// others are made when a file is opened for writing.
	requiredBuckets = [][]byte{bucketTasks, bucketDue, bucketExpire, bucketByState, bucketMeta, bucketQueues, bucketCounts}
	allBuckets      = append(requiredBuckets[:len(requiredBuckets):len(requiredBuckets)], bucketSchedules, bucketScheduleDue, bucketPayloads)

	metaApplied     = []byte("applied")
	metaAppliedTerm = []byte("applied_term")
	metaSchema      = []byte("schema")
)

// SchemaVersion is the layout of the state file this build reads and
// writes. It is written to meta on creation; a file of an older version is
// migrated when opened for writing (see migrate), a newer one is refused
// rather than misread.
//
//	1: tasks, due, running, expire, by_state, meta.
//	2: due values carry the task's route; queues; counts.
//	3: no running index (by_state's running prefix is one).
//	4: schedules, schedule_due.
//	5: payloads: a long payload apart from its task's record.
const SchemaVersion = 5

// OldestSnapshotSchema is the oldest schema of a raft snapshot or backup
// this build installs (migrating it as it opens it): one taken before an
// upgrade stays usable after it.
const OldestSnapshotSchema = 2

// lastState is the highest task state.
const lastState = fsmpb.State_EXPIRED

// timeKey is a time (unix ns) followed by an id, ordered by time. The sign
// bit is flipped so that the order holds for any int64.
func timeKey(at int64, id string) []byte {
	return appendTimeKey(make([]byte, 0, 8+len(id)), at, id)
}

// appendTimeKey appends timeKey(at, id) to k.
func appendTimeKey(k []byte, at int64, id string) []byte {
	k = binary.BigEndian.AppendUint64(k, uint64(at)^(1<<63))
	return append(k, id...)
}

// splitTimeKey undoes timeKey.
func splitTimeKey(k []byte) (int64, string) {
	return int64(binary.BigEndian.Uint64(k) ^ (1 << 63)), string(k[8:])
}

// stateKey is the by_state index key of a task.
func stateKey(state fsmpb.State, queue, id string) []byte {
	return appendStateKey(make([]byte, 0, 2+len(queue)+len(id)), state, queue, id)
}

// appendStateKey appends stateKey(state, queue, id) to k.
func appendStateKey(k []byte, state fsmpb.State, queue, id string) []byte {
	k = append(k, byte(state))
	k = append(k, queue...)
	k = append(k, 0)
	return append(k, id...)
}

// StateKey is where a task of state and queue stands in a list filtered
// by state or queue: the cursor after it (ListQuery.After).
func StateKey(state fsmpb.State, queue, id string) []byte { return stateKey(state, queue, id) }

// statePrefix is the by_state prefix of a state and, if not empty, a queue.
func statePrefix(state fsmpb.State, queue string) []byte {
	k := []byte{byte(state)}
	if queue != "" {
		k = append(k, queue...)
		k = append(k, 0)
	}
	return k
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// Route is where a due task goes: its queue, and the host of its target
// (push delivery) or none (Pull: leased by workers). The scheduler gates
// dispatches per queue and per host with it, without reading the task.
type Route struct {
	Queue string
	Host  string
	Pull  bool
}

// routeOf is t's route.
func routeOf(t *fsmpb.Task) Route {
	if t.Target == nil {
		return Route{Queue: t.Queue, Pull: true}
	}
	return Route{Queue: t.Queue, Host: hostOf(t.Target.Url)}
}

// hostOf is the host and port an absolute URL connects to, spelled one
// way however the URL spells them, found without parsing the whole URL
// (the API checked it already): without user info, in lower case, a
// name without its trailing dot, an IP address in its canonical form (an
// IPv4-mapped IPv6 one as IPv4), the port as a plain number, the scheme's
// default port when none is given. Names are not resolved: two names of
// one server are two hosts.
func hostOf(url string) string {
	scheme := ""
	if i := strings.Index(url, "://"); i >= 0 {
		scheme, url = strings.ToLower(url[:i]), url[i+3:]
	}
	if i := strings.IndexAny(url, "/?#"); i >= 0 {
		url = url[:i]
	}
	if i := strings.LastIndexByte(url, '@'); i >= 0 {
		url = url[i+1:]
	}
	host, port := url, ""
	if i := strings.LastIndexByte(url, ':'); i >= 0 && !strings.Contains(url[i:], "]") {
		host, port = url[:i], url[i+1:]
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	} else {
		host = strings.TrimSuffix(host, ".")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10)
	} else if port == "" && scheme == "https" {
		port = "443"
	} else if port == "" {
		port = "80"
	}
	return net.JoinHostPort(host, port)
}

// encodeRoute is the value of a task's due index entry: a flags byte (1:
// pull), the queue's length as a uvarint, the queue, the host.
func encodeRoute(r Route) []byte {
	v := make([]byte, 0, 2+len(r.Queue)+len(r.Host))
	if r.Pull {
		v = append(v, 1)
	} else {
		v = append(v, 0)
	}
	v = binary.AppendUvarint(v, uint64(len(r.Queue)))
	v = append(v, r.Queue...)
	return append(v, r.Host...)
}

// decodeRoute undoes encodeRoute; ok is false for a malformed value.
func decodeRoute(v []byte) (r Route, ok bool) {
	if len(v) < 2 {
		return Route{}, false
	}
	n, size := binary.Uvarint(v[1:])
	if size <= 0 || uint64(len(v)-1-size) < n {
		return Route{}, false
	}
	rest := v[1+size:]
	return Route{Pull: v[0]&1 != 0, Queue: string(rest[:n]), Host: string(rest[n:])}, true
}

// queueState names a count: the tasks of a queue in a state.
type queueState struct {
	queue string
	state fsmpb.State
}

// key is the counts bucket key of the count.
func (c queueState) key() []byte {
	return append(append([]byte(c.queue), 0), byte(c.state))
}
