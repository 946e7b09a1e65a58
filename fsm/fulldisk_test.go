package fsm

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/internal/smalldisk"
)

// TestApplyWaitsOutAFullDisk: on a 4 MiB tmpfs, applying creates until
// the state file cannot grow makes ApplyBatch wait (WaitingForSpace), not
// panic. StopWaiting ends the wait with nothing applied, and nothing
// after it either, so that raft can shut down; the file then holds
// every batch before the stopped one, and none after.
func TestApplyWaitsOutAFullDisk(t *testing.T) {
	path := filepath.Join(smalldisk.Mount(t, "4m"), "state.db")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("x", 4000))
	batch := func(index uint64) []*raft.Log {
		tasks := make([]*fsmpb.Task, 20)
		for i := range tasks {
			tasks[i] = newTask(fmt.Sprintf("t%05d-%02d", index, i), 100)
			tasks[i].Payload = payload
		}
		data, err := EncodeEntry(create(tasks...))
		if err != nil {
			t.Fatal(err)
		}
		return []*raft.Log{{Index: index, Term: 1, Type: raft.LogCommand, Data: data}}
	}
	applied := make(chan uint64)
	go func() {
		defer close(applied)
		for index := uint64(1); index < 10_000; index++ {
			f.ApplyBatch(batch(index))
			applied <- index
		}
	}()
	var last uint64
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case index := <-applied:
			last = index
		case <-time.After(time.Second):
			if f.WaitingForSpace() {
				break wait
			}
		case <-deadline:
			t.Fatalf("applied up to %d; the disk never filled, or applying stopped without waiting", last)
		}
	}
	if got := f.AppliedIndex(); got != last {
		t.Fatalf("waiting for space at entry %d with %d applied", last+1, got)
	}
	f.StopWaiting()
	select {
	case index := <-applied: // the stopped batch returns
		if index != last+1 {
			t.Fatalf("batch %d returned after %d", index, last)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("StopWaiting did not end the wait")
	}
	if out := f.ApplyBatch(batch(last + 2)); out[0] != nil {
		t.Fatalf("a batch after the stopped one answered %v", out[0])
	}
	if got := f.AppliedIndex(); got != last {
		t.Fatalf("applied index %d after the stop, %d before", got, last)
	}
	go func() { // let the applier goroutine end
		for range applied {
		}
	}()
	f.Close()
}
