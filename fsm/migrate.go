package fsm

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// migrate brings a state file of an older schema version up to this one,
// inside the transaction that opens it. Every node migrates the same state
// to the same result, so peers stay equal.
func migrate(tx *bolt.Tx, from uint64) error {
	switch from {
	case 1:
		if err := migrate1to2(tx); err != nil {
			return fmt.Errorf("migrate state file to schema version 2: %w", err)
		}
		fallthrough
	case 2:
		// 2 → 3: the running index goes; by_state lists running tasks.
		if err := tx.DeleteBucket(bucketRunning); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return fmt.Errorf("migrate state file to schema version 3: %w", err)
		}
		fallthrough
	case 3:
		// 3 → 4: the schedule buckets, which opening made.
		fallthrough
	case 4:
		// 4 → 5: the payloads bucket, which opening made. Records keep
		// their long payloads until they are next written.
	default:
		return fmt.Errorf("state file schema version %d: no migration to version %d", from, SchemaVersion)
	}
	return tx.Bucket(bucketMeta).Put(metaSchema, u64(SchemaVersion))
}

// migrate1to2 gives due values the route, and makes queues and counts.
func migrate1to2(tx *bolt.Tx) error {
	a := newApplier(tx)
	tasks := tx.Bucket(bucketTasks)
	err := tasks.ForEach(func(k, v []byte) error {
		t := new(fsmpb.Task)
		if err := decodeTask(v, t); err != nil {
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
		return err
	}
	return a.flushCounts()
}
