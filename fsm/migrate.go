package fsm

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// migrate brings a state file of an older schema version up to this one,
// inside the transaction that opens it. Every node migrates the same state
// to the same result, so peers stay equal.
func migrate(tx *bolt.Tx, from uint64) error {
	if from != 1 {
		return fmt.Errorf("state file schema version %d: no migration to version %d", from, SchemaVersion)
	}
	// 1 → 2: due values carry the route; queues and counts exist.
	a := newApplier(tx)
	tasks := tx.Bucket(bucketTasks)
	err := tasks.ForEach(func(k, v []byte) error {
		t := new(fsmpb.Task)
		if err := proto.Unmarshal(v, t); err != nil {
			return fmt.Errorf("decode task %q: %w", k, err)
		}
		a.countDeltas[queueState{t.Queue, t.State}]++
		if err := a.ensureQueue(t.Queue, t.CreatedAt); err != nil {
			return err
		}
		if t.State == fsmpb.State_SCHEDULED {
			return a.due.Put(timeKey(t.DueAt, t.Id), encodeRoute(routeOf(t)))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate state file to schema version %d: %w", SchemaVersion, err)
	}
	if err := a.flushCounts(); err != nil {
		return fmt.Errorf("migrate state file to schema version %d: %w", SchemaVersion, err)
	}
	return tx.Bucket(bucketMeta).Put(metaSchema, u64(SchemaVersion))
}
