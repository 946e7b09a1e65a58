package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/internal/lazyfs"
)

// TestPowerCut runs a node on a file system that forgets, at a power cut,
// every write not fsynced (internal/lazyfs), and cuts its power at random
// moments while creates (single and batched), cancels, fires, snapshots
// and log compactions go on: the process is killed, every unsynced write
// is undone (or, every other time, some of their pages and not others:
// files torn), and the node starts again as after a reboot
// (its state-file markers name another boot). The raft log is fsynced and
// must hold every acknowledged write; the state file is not, and must be
// rebuilt from the log and snapshots. After the last cut: every
// acknowledged create is there and delivered, every acknowledged cancel
// holds (cancelled, never delivered), nothing was delivered early, no
// attempt repeated, and each restart was ready within the 30 s that
// startServer allows. With HOURGLASS_KEEP_POWERCUT=dir, a run that loses
// a write copies its data directory there, to look into.
func TestPowerCut(t *testing.T) {
	lfs := lazyfs.ForTest(t)
	dataDir := filepath.Join(lfs.Dir(), "data")
	raftAddr := freeAddr(t)
	// Snapshots and compactions every few hundred milliseconds.
	flags := []string{"--raft-snapshot-threshold", "100", "--raft-snapshot-interval", "200ms", "--raft-trailing-logs", "50"}
	recv := newCheckedReceiver(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 20))

	load := &powerCutLoad{url: recv.URL, due: map[string]time.Time{}, cancelled: map[string]bool{}}
	const cuts = 6
	var lastCut time.Time
	var logs []string
	syncs := 0 // fsyncs the file system saw, after the last round
	for round := range cuts {
		began := time.Now()
		srv := startServer(t, dataDir, raftAddr, flags...)
		logs = append(logs, srv.logPath)
		t.Logf("round %d: ready %v after start", round, time.Since(began).Round(time.Millisecond))
		stop := load.start(recv.client(srv.addr), fmt.Sprintf("r%d", round))
		time.Sleep(time.Duration(300+rng.IntN(2000)) * time.Millisecond) // the moment of the cut
		srv.kill()
		lastCut = time.Now()
		stop()
		// Every unsynced write lost, or (odd rounds) some pages of them
		// written back and some not: files torn.
		how, cut := "cut", lfs.Cut
		if round%2 == 1 {
			how, cut = "torn cut", func() error { return lfs.CutTorn(rng) }
		}
		if err := cut(); err != nil {
			t.Fatal(err)
		}
		st := lfs.Stats()
		t.Logf("round %d: %s; %d unsynced writes to %d files undone (%d writes, %d fsyncs so far)", round, how, st.Forgotten, st.ForgottenFiles, st.Writes, st.Syncs)
		// Else the round proved nothing: the node synced nothing through
		// the file system (the raft log must), or the cut undid nothing.
		if st.Syncs <= syncs || st.Forgotten == 0 {
			t.Fatalf("round %d: %d fsyncs seen (%d before), %d unsynced writes undone", round, st.Syncs, syncs, st.Forgotten)
		}
		syncs = st.Syncs
		rebooted(t, dataDir, fmt.Sprintf("after-cut-%d", round))
	}

	began := time.Now()
	srv := startServer(t, dataDir, raftAddr, flags...)
	t.Logf("after the last cut: ready %v after start", time.Since(began).Round(time.Millisecond))
	c := recv.client(srv.addr)
	due, cancelled := load.due, load.cancelled
	if len(due) == 0 || len(cancelled) == 0 {
		t.Fatalf("the load was not acknowledged: %d creates, %d cancels", len(due), len(cancelled))
	}
	ctx := context.Background()
	var missing []string
	for id := range due {
		task, err := c.GetTask(ctx, id)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (acknowledged %v after the cut before it): %v", id, load.acked[id].Round(time.Millisecond), err))
			continue
		}
		if cancelled[id] && task.State != "cancelled" {
			missing = append(missing, fmt.Sprintf("%s (acknowledged %v after the cut before it), whose cancel returned 200, is %s", id, load.acked[id].Round(time.Millisecond), task.State))
		}
	}
	if len(missing) > 0 {
		for i, p := range append(logs, srv.logPath) {
			data, _ := os.ReadFile(p)
			for _, line := range strings.Split(string(data), "\n") {
				if strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") || strings.Contains(line, "snapshot") {
					t.Logf("run %d: %s", i, line)
				}
			}
		}
		if keep := os.Getenv("HOURGLASS_KEEP_POWERCUT"); keep != "" {
			srv.kill()
			out, err := exec.Command("cp", "-a", lfs.Backing(), keep).CombinedOutput()
			t.Logf("data kept in %s: %v %s", keep, err, out)
		}
		slices.Sort(missing)
		checkHistory(t, "power cuts", recv.hist)
		t.Fatalf("%d acknowledged writes lost after the cuts:\n%s", len(missing), strings.Join(missing, "\n"))
	}
	waitFor(t, 60*time.Second, "every acknowledged task delivered", func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for id := range due {
			if !cancelled[id] && len(recv.got[id]) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // let any late, wrong delivery show up
	recv.verdict(t, "power cuts", due, cancelled, lastCut, 0)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for id, ds := range recv.got {
		if at, ok := load.intended(id); ok {
			for _, d := range ds {
				if d.at.Before(at) {
					t.Errorf("task %s (its create not acknowledged) delivered %v early", id, at.Sub(d.at))
				}
			}
		}
	}
}

// rebooted makes the data directory look as a machine that restarted
// would find it: each state-file marker (cluster/laststop.go) names
// another boot of the kernel than this one.
func rebooted(t *testing.T, dataDir, boot string) {
	t.Helper()
	markers, err := filepath.Glob(filepath.Join(dataDir, "groups", "*", "state.open"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range markers {
		if err := os.WriteFile(m, []byte(boot+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// powerCutLoad creates tasks due within three seconds, single and in
// batches, from four goroutines, and cancels every fifth at once (those
// due four seconds out); it keeps the acknowledged creates and cancels.
type powerCutLoad struct {
	url       string
	mu        sync.Mutex
	due       map[string]time.Time     // acknowledged creates
	cancelled map[string]bool          // of those, cancels answered 200
	tried     map[string]time.Time     // every create sent, acknowledged or not
	acked     map[string]time.Duration // when, after the run's start
	began     time.Time
}

func (l *powerCutLoad) intended(id string) (time.Time, bool) {
	at, ok := l.tried[id]
	return at, ok
}

// start runs the load through c until the returned stop is called.
func (l *powerCutLoad) start(c *client.Client, prefix string) (stop func()) {
	if l.tried == nil {
		l.tried, l.acked = map[string]time.Time{}, map[string]time.Duration{}
	}
	l.began = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				n := 1
				if g%2 == 1 {
					n = 50 // batches
				}
				var batch []client.CreateTaskRequest
				for i := range n {
					id := fmt.Sprintf("%s-g%d-%05d-%02d", prefix, g, k, i)
					at := time.Now().Add(300*time.Millisecond + time.Duration((k*7+i)%2700)*time.Millisecond).Round(0)
					doomed := (k+i)%5 == 0
					if doomed {
						at = time.Now().Add(4 * time.Second).Round(0)
					}
					l.mu.Lock()
					l.tried[id] = at
					l.mu.Unlock()
					batch = append(batch, client.CreateTaskRequest{ID: id, ExecuteAt: at.UTC().Format(time.RFC3339Nano), Target: &client.Target{URL: l.url}})
				}
				results, err := c.CreateTasks(ctx, batch)
				if err != nil {
					continue // not acknowledged: no verdict on it
				}
				for i, r := range results {
					if r.Error != nil {
						continue
					}
					id := batch[i].ID
					l.mu.Lock()
					l.due[id] = l.tried[id]
					l.acked[id] = time.Since(l.began)
					l.mu.Unlock()
					if (k+i)%5 == 0 {
						if _, err := c.CancelTask(ctx, id); err == nil {
							l.mu.Lock()
							l.cancelled[id] = true
							l.mu.Unlock()
						} else {
							// It may have committed: whether it is
							// delivered is not known.
							l.mu.Lock()
							delete(l.due, id)
							l.mu.Unlock()
						}
					}
				}
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}
