package cluster

import (
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// writebackChunk is how much of a snapshot may be written before its
// writeback to disk is started.
const writebackChunk = 16 << 20

// writebackStore is raft's file snapshot store, with sinks that have the
// kernel write a snapshot out while it is being written. Without that a
// multi-gigabyte snapshot sat in the page cache until the sink's closing
// fsync flushed it all at once, and every raft log fsync queued behind
// that flush: firing paused for over a second at the end of each snapshot
// of a 1 GB state.
type writebackStore struct {
	*raft.FileSnapshotStore
	dir string // where the store keeps its snapshots
}

func newSnapshotStore(base string, retain int, logger hclog.Logger) (*writebackStore, error) {
	s, err := raft.NewFileSnapshotStoreWithLogger(base, retain, logger)
	if err != nil {
		return nil, err
	}
	return &writebackStore{FileSnapshotStore: s, dir: filepath.Join(base, "snapshots")}, nil
}

func (s *writebackStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	// The file store writes the data of snapshot ID to ID.tmp/state.bin
	// until Close renames the directory.
	return &writebackSink{SnapshotSink: sink, path: filepath.Join(s.dir, sink.ID()+".tmp", "state.bin")}, nil
}

// writebackSink starts the writeback of every writebackChunk written.
type writebackSink struct {
	raft.SnapshotSink
	path             string
	file             *os.File // the same file, opened to start writeback
	written, flushed int64
	off              bool // the file could not be found: a plain sink
}

func (w *writebackSink) Write(p []byte) (int, error) {
	n, err := w.SnapshotSink.Write(p)
	w.written += int64(n)
	if !w.off && w.written-w.flushed >= writebackChunk {
		w.writeback()
	}
	return n, err
}

func (w *writebackSink) writeback() {
	if w.file == nil {
		f, err := os.Open(w.path)
		if err != nil {
			w.off = true // another layout: the closing fsync does it all
			return
		}
		w.file = f
	}
	// What the sink has written through its buffer, roughly: the tail
	// still buffered goes with the next chunk, or the closing fsync.
	upTo := w.written - writebackChunk/4
	if upTo > w.flushed {
		startWriteback(w.file, w.flushed, upTo-w.flushed)
		w.flushed = upTo
	}
}

func (w *writebackSink) Close() error {
	w.closeFile()
	return w.SnapshotSink.Close()
}

func (w *writebackSink) Cancel() error {
	w.closeFile()
	return w.SnapshotSink.Cancel()
}

func (w *writebackSink) closeFile() {
	if w.file != nil {
		w.file.Close()
		w.file = nil
	}
}
