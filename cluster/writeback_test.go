package cluster

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A snapshot written through the writeback store is found on disk while
// it is written (so its writeback starts early), and reads back whole.
func TestWritebackStore(t *testing.T) {
	store, err := newSnapshotStore(t.TempDir(), 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 2, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("hourglass"), 1<<17) // ~1.1 MiB
	var want bytes.Buffer
	for want.Len() < 3*writebackChunk {
		if _, err := sink.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want.Write(chunk)
	}
	w := sink.(*writebackSink)
	if w.off || w.flushed == 0 {
		t.Fatalf("writeback never started (file %s found: %v, flushed %d of %d)", w.path, !w.off, w.flushed, w.written)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	list, err := store.List()
	if err != nil || len(list) != 1 || list[0].Index != 10 {
		t.Fatalf("snapshots %v, %v", list, err)
	}
	_, rc, err := store.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("snapshot read back %d bytes, differing from the %d written", len(got), want.Len())
	}
}
