package fsm

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// stored is what the state file holds for task id: the payload in its
// record, and the one kept apart.
func (h *harness) stored(id string) (inRecord, apart []byte) {
	h.t.Helper()
	err := h.f.view(func(tx *bolt.Tx) error {
		var t fsmpb.Task
		if err := decodeTask(tx.Bucket(bucketTasks).Get([]byte(id)), &t); err != nil {
			return err
		}
		inRecord, apart = t.Payload, bytes.Clone(tx.Bucket(bucketPayloads).Get([]byte(id)))
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return inRecord, apart
}

// TestLongPayloadsAreKeptApart: a payload longer than apartPayload lives
// outside the task's record, written once; every read still has it, an
// update replaces it, a purge removes it.
func TestLongPayloadsAreKeptApart(t *testing.T) {
	h := newHarness(t)
	long := bytes.Repeat([]byte("x"), apartPayload+1)
	short := []byte(`{"n":1}`)
	a, b := newTask("a", 100), newTask("b", 100)
	a.Payload, b.Payload = long, short
	h.apply(create(a, b))
	if in, apart := h.stored("a"); len(in) != 0 || !bytes.Equal(apart, long) {
		t.Fatalf("long payload: %d bytes in the record, %d apart", len(in), len(apart))
	}
	if in, apart := h.stored("b"); !bytes.Equal(in, short) || apart != nil {
		t.Fatalf("short payload: %q in the record, %q apart", in, apart)
	}
	h.checkRecords()

	acc := h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))[0].(*FireResult).Accepted
	if len(acc) != 1 || !bytes.Equal(acc[0].Payload, long) {
		t.Fatalf("fire accepted %d tasks, payload of %d bytes", len(acc), len(acc[0].Payload))
	}
	h.apply(outcome(&fsmpb.Outcome{Id: "a", Attempt: 1, Kind: fsmpb.Outcome_RETRY, RetryAt: 300}))
	if got := h.get("a"); got.State != fsmpb.State_SCHEDULED || !bytes.Equal(got.Payload, long) {
		t.Fatalf("after a retry: %s with %d bytes of payload", StateName(got.State), len(got.Payload))
	}
	if list, _, err := h.f.List(ListQuery{Limit: 10}); err != nil || len(list) != 2 || !bytes.Equal(list[0].Payload, long) || !bytes.Equal(list[1].Payload, short) {
		t.Fatalf("list: %v %v", list, err)
	}
	h.checkRecords()

	// An update to a short payload puts it in the record, and back.
	update := func(payload []byte) *TaskResult {
		return h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Update{Update: &fsmpb.UpdateTask{Id: "a", At: 70, Payload: payload}}})[0].(*TaskResult)
	}
	if r := update(short); r.Err != nil || !bytes.Equal(r.Task.Payload, short) {
		t.Fatalf("update to a short payload: %+v", r)
	}
	if in, apart := h.stored("a"); !bytes.Equal(in, short) || apart != nil {
		t.Fatalf("after the update to a short payload: %q in the record, %d bytes apart", in, len(apart))
	}
	other := bytes.Repeat([]byte("y"), 3*apartPayload)
	if r := update(other); r.Err != nil || !bytes.Equal(h.get("a").Payload, other) {
		t.Fatalf("update to another long payload: %+v", r.Err)
	}
	if in, apart := h.stored("a"); len(in) != 0 || !bytes.Equal(apart, other) {
		t.Fatalf("after the update to a long payload: %d bytes in the record, %d apart", len(in), len(apart))
	}
	h.checkRecords()

	h.apply(cancel("a", 80))
	h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Purge{Purge: &fsmpb.PurgeTasks{Before: 1 << 62, Limit: 10}}})
	if _, apart := h.stored("b"); apart != nil {
		t.Fatal("b has a payload apart")
	}
	err := h.f.view(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketPayloads).Stats().KeyN; n != 0 {
			t.Errorf("%d payloads kept after the purge", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.checkRecords()
}

// TestLongPayloadInARecordMovesApartWhenWritten: a record written before
// schema 5 holds its long payload; reads have it, and the first state
// change moves it apart.
func TestLongPayloadInARecordMovesApartWhenWritten(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 100)))
	long := bytes.Repeat([]byte("z"), 2*apartPayload)
	err := h.f.db.Update(func(tx *bolt.Tx) error { // as schema 4 stored it
		var task fsmpb.Task
		if err := decodeTask(tx.Bucket(bucketTasks).Get([]byte("a")), &task); err != nil {
			return err
		}
		task.Payload = long
		v, err := task.MarshalVT()
		if err != nil {
			return err
		}
		return tx.Bucket(bucketTasks).Put([]byte("a"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.get("a"); !bytes.Equal(got.Payload, long) {
		t.Fatalf("read of an old record: %d bytes of payload", len(got.Payload))
	}
	acc := h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))[0].(*FireResult).Accepted
	if len(acc) != 1 || !bytes.Equal(acc[0].Payload, long) {
		t.Fatalf("fire of an old record: %v", acc)
	}
	if in, apart := h.stored("a"); len(in) != 0 || !bytes.Equal(apart, long) {
		t.Fatalf("after its fire: %d bytes in the record, %d apart", len(in), len(apart))
	}
	h.checkRecords()
}
