package fsm

import (
	"encoding/binary"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

var (
	bucketTasks   = []byte("tasks")
	bucketDue     = []byte("due")
	bucketRunning = []byte("running")
	bucketExpire  = []byte("expire")
	bucketByState = []byte("by_state")
	bucketMeta    = []byte("meta")

	allBuckets = [][]byte{bucketTasks, bucketDue, bucketRunning, bucketExpire, bucketByState, bucketMeta}

	metaApplied     = []byte("applied")
	metaAppliedTerm = []byte("applied_term")
	metaSchema      = []byte("schema")
)

// SchemaVersion is the layout of the state file this build reads and
// writes. It is written to meta on creation; a file with another version
// is refused rather than misread.
const SchemaVersion = 1

// timeKey is a time (unix ns) followed by an id, ordered by time. The sign
// bit is flipped so that the order holds for any int64.
func timeKey(at int64, id string) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at)^(1<<63))
	copy(k[8:], id)
	return k
}

// splitTimeKey undoes timeKey.
func splitTimeKey(k []byte) (int64, string) {
	return int64(binary.BigEndian.Uint64(k) ^ (1 << 63)), string(k[8:])
}

// stateKey is the by_state index key of a task.
func stateKey(state fsmpb.State, queue, id string) []byte {
	k := make([]byte, 0, 2+len(queue)+len(id))
	k = append(k, byte(state))
	k = append(k, queue...)
	k = append(k, 0)
	return append(k, id...)
}

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
