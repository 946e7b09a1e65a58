package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/internal/smalldisk"
)

// TestFullDisk runs a node on a 24 MiB tmpfs and fills it with pending
// tasks until writes fail: they fail with 507 naming the disk (or, when
// the state file rather than the raft log could not grow, with 503 while
// applying waits for space); the node stays up and still answers. Once
// the filesystem is grown, writes go through again by themselves, every
// acknowledged task is there, and a task due now is delivered.
func TestFullDisk(t *testing.T) {
	mnt := smalldisk.Mount(t, "24m")
	srv := startServer(t, filepath.Join(mnt, "data"), freeAddr(t))
	c := client.New(srv.addr, "")
	ctx := context.Background()

	payload := []byte(`"` + strings.Repeat("x", 2000) + `"`)
	var acknowledged []string
	batches := 0
	// fill creates batches of pending tasks until one is refused, and
	// checks how: 507 naming the disk (the raft log could not grow) or
	// 503 naming it, as /readyz does (the state file could not grow, and
	// applying waits for space); the node stays up.
	fill := func() {
		t.Helper()
		var refused *client.Error
		for start := batches; refused == nil; batches++ {
			if batches-start > 1000 {
				t.Fatal("the disk never filled up")
			}
			batch := make([]client.CreateTaskRequest, 100)
			for i := range batch {
				batch[i] = client.CreateTaskRequest{ID: fmt.Sprintf("fill-%03d-%03d", batches, i), Delay: "1h", Queue: "fill", Payload: payload}
			}
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			results, err := c.CreateTasks(cctx, batch)
			cancel()
			if err != nil {
				if !errors.As(err, &refused) {
					t.Fatalf("a create on a full disk failed without an answer: %v", err)
				}
				break
			}
			for i, r := range results {
				if r.Error != nil {
					t.Fatalf("create %s: %+v", batch[i].ID, r.Error)
				}
				acknowledged = append(acknowledged, batch[i].ID)
			}
		}
		t.Logf("the disk filled after %d tasks; the next batch: %v", len(acknowledged), refused)
		switch {
		case refused.Status == http.StatusInsufficientStorage && strings.Contains(refused.Message, "disk of the data directory is full"):
		case refused.Status == http.StatusServiceUnavailable && strings.Contains(refused.Message, "disk of the data directory is full"):
			if err := c.Ready(ctx); err == nil || !strings.Contains(err.Error(), "disk of the data directory is full") {
				t.Fatalf("readiness on a full disk: %v", err)
			}
		default:
			t.Fatalf("a full disk answered %v", refused)
		}
		if log := srv.logTail(); !strings.Contains(log, "no space left on device") {
			t.Fatalf("the log does not say the disk is full:\n%s", log)
		}
		select {
		case <-srv.exited:
			t.Fatalf("the server died on a full disk:\n%s", srv.logTail())
		default:
		}
	}
	holdsAll := func() {
		t.Helper()
		for _, id := range acknowledged {
			if _, err := c.GetTask(ctx, id); err != nil {
				t.Fatalf("acknowledged task %s after the disk was full: %v", id, err)
			}
		}
	}
	fill()

	smalldisk.Resize(t, mnt, "256m")
	recv := newCheckedReceiver(t)
	waitFor(t, 60*time.Second, "writes going through again", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.CreateTask(cctx, client.CreateTaskRequest{ID: "after", Delay: "0s", Target: &client.Target{URL: recv.URL}})
		return err == nil
	})
	waitFor(t, 30*time.Second, "the task created after the disk was grown delivered", func() bool { return recv.count() == 1 })
	holdsAll()

	// Full again (the tmpfs shrunk to a little more than it holds), and
	// stopped while it waits: it stops, and comes back whole.
	used := diskUsed(t, mnt)
	smalldisk.Resize(t, mnt, fmt.Sprintf("%dk", used/1024+2048))
	fill()
	srv.terminate(t)
	smalldisk.Resize(t, mnt, "256m")
	srv = startServer(t, srv.dataDir, srv.raftAddr)
	c = client.New(srv.addr, "")
	holdsAll()
}

// diskUsed is how many bytes the file system at path holds.
func diskUsed(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return (st.Blocks - st.Bfree) * uint64(st.Bsize)
}
