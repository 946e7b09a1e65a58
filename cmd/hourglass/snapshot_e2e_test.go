package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/fsm/archive/archivetest"
)

// listAll reads every task through the API, keyed by id.
func listAll(t *testing.T, c *client.Client) map[string]client.Task {
	t.Helper()
	out := map[string]client.Task{}
	token := ""
	for {
		page, err := c.ListTasks(context.Background(), client.ListOptions{Limit: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range page.Tasks {
			out[task.ID] = task
		}
		if token = page.NextPageToken; token == "" {
			return out
		}
	}
}

// diffTasks says how two listings differ ("" when they are equal).
func diffTasks(got, want map[string]client.Task) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d tasks, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || !reflect.DeepEqual(g, w) {
			gj, _ := json.Marshal(got[id])
			wj, _ := json.Marshal(w)
			return fmt.Sprintf("task %s is\n  %s\nwant\n  %s", id, gj, wj)
		}
	}
	return ""
}

// hg runs the hourglass CLI against addr.
func hg(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	if addr != "" {
		args = append(args, "--addr", addr)
	}
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

// TestSnapshotSaveChangeRestore saves a backup of tasks in every state with
// the CLI, changes things, restores it, and checks that every task is back
// exactly as it was saved: state, attempts, error, timestamps, version.
// Damaged and truncated archives are refused and change nothing.
func TestSnapshotSaveChangeRestore(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	c := client.New(srv.addr, "")
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	defer failing.Close()

	var reqs []client.CreateTaskRequest
	for i := 0; i < 20; i++ {
		reqs = append(reqs, client.CreateTaskRequest{ID: fmt.Sprintf("later-%02d", i), Delay: "1h", Target: &client.Target{URL: ok.URL},
			Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
	}
	for i := 0; i < 5; i++ {
		reqs = append(reqs, client.CreateTaskRequest{ID: fmt.Sprintf("done-%d", i), Delay: "100ms", Target: &client.Target{URL: ok.URL}})
		reqs = append(reqs, client.CreateTaskRequest{ID: fmt.Sprintf("dead-%d", i), Delay: "100ms", MaxAttempts: 1, Target: &client.Target{URL: failing.URL}})
	}
	createAll(t, c, reqs)
	for i := 0; i < 20; i += 4 {
		if _, err := c.CancelTask(context.Background(), fmt.Sprintf("later-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "every quick task finished", func() bool {
		all := listAll(t, c)
		for i := 0; i < 5; i++ {
			if all[fmt.Sprintf("done-%d", i)].State != "succeeded" || all[fmt.Sprintf("dead-%d", i)].State != "dead" {
				return false
			}
		}
		return true
	})
	saved := listAll(t, c)

	file := filepath.Join(t.TempDir(), "backup.snap")
	out, err := hg(t, srv.addr, "snapshot", "save", file)
	if err != nil || !strings.Contains(out, "tasks: 30 (scheduled 15, running 0, succeeded 5, dead 5, cancelled 5)") {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	if _, err := os.Stat(file + ".unverified"); !os.IsNotExist(err) {
		t.Fatalf("save left %s.unverified behind", file)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", st, err)
	}
	out, err = hg(t, "", "snapshot", "inspect", file)
	if err != nil || !strings.Contains(out, "is a whole backup") || !strings.Contains(out, "succeeded 5, dead 5, cancelled 5") {
		t.Fatalf("snapshot inspect: %v\n%s", err, out)
	}

	// Change things: cancel, create, reschedule.
	for _, id := range []string{"later-01", "later-02"} {
		if _, err := c.CancelTask(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	createAll(t, c, []client.CreateTaskRequest{{ID: "new-1", Delay: "1h", Target: &client.Target{URL: ok.URL}}})
	if _, err := c.UpdateTask(context.Background(), "later-03", client.UpdateTaskRequest{Delay: "2h"}, 0); err != nil {
		t.Fatal(err)
	}
	changed := listAll(t, c)

	// A save never overwrites a backup unless told to.
	before, _ := os.ReadFile(file)
	if out, err := hg(t, srv.addr, "snapshot", "save", file); err == nil || !strings.Contains(out, "exists; pass --force") {
		t.Fatalf("snapshot save over an existing backup: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Fatal("a refused save changed the existing backup")
	}
	other := filepath.Join(t.TempDir(), "other.snap")
	if err := os.WriteFile(other, []byte("an old file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := hg(t, srv.addr, "snapshot", "save", "--force", other); err != nil || !strings.Contains(out, "saved "+other) {
		t.Fatalf("snapshot save --force: %v\n%s", err, out)
	}

	// Damaged archives are refused, by the CLI and by the API, and
	// change nothing.
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flipped := archivetest.Damage(t, good, len(good)/2)
	for name, data := range map[string][]byte{"flipped": flipped, "truncated": good[:len(good)*2/3], "foreign": []byte("PK\x03\x04 a zip file")} {
		bad := filepath.Join(t.TempDir(), name+".snap")
		if err := os.WriteFile(bad, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := hg(t, srv.addr, "snapshot", "restore", bad)
		if err == nil || !strings.Contains(out, "invalid snapshot") || !strings.Contains(out, "nothing was sent") {
			t.Fatalf("restore of a %s archive: %v\n%s", name, err, out)
		}
		resp, err := http.Post(srv.addr+"/v1/snapshot", "application/gzip", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var e client.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e.Error.Code != client.CodeInvalidArgument || !strings.Contains(e.Error.Message, "nothing was changed") {
			t.Fatalf("POST of a %s archive: HTTP %d %+v", name, resp.StatusCode, e.Error)
		}
		if out, err := hg(t, "", "snapshot", "inspect", bad); err == nil {
			t.Fatalf("inspect of a %s archive passed:\n%s", name, out)
		}
	}
	if d := diffTasks(listAll(t, c), changed); d != "" {
		t.Fatalf("a refused restore changed the state: %s", d)
	}

	out, err = hg(t, srv.addr, "snapshot", "restore", file)
	if err != nil || !strings.Contains(out, "tasks: 30 (scheduled 15") {
		t.Fatalf("snapshot restore: %v\n%s", err, out)
	}
	if d := diffTasks(listAll(t, c), saved); d != "" {
		t.Fatalf("after the restore: %s", d)
	}
	// The restored cluster works on: a create, and the ids restored stay
	// taken.
	if _, err := c.CreateTask(context.Background(), client.CreateTaskRequest{ID: "new-1", Delay: "1h", Target: &client.Target{URL: failing.URL}}); err != nil {
		t.Fatalf("create after the restore: %v", err)
	}
	if _, err := c.CreateTask(context.Background(), client.CreateTaskRequest{ID: "done-0", Delay: "1h", Target: &client.Target{URL: failing.URL}}); err == nil {
		t.Fatal("a restored id was free to take again with another body")
	}
}

// TestSnapshotUnderLoad takes a backup while creates run at about 500 a
// second and checks that the archive holds every task acknowledged before
// the save began.
func TestSnapshotUnderLoad(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	c := client.New(srv.addr, "")
	type ack struct {
		id string
		at time.Time
	}
	var mu sync.Mutex
	var acks []ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ { // 4 clients, one create each 8ms: ~500/s
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			tick := time.NewTicker(8 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				id := fmt.Sprintf("load-%d-%05d", w, i)
				if _, err := c.CreateTask(context.Background(), client.CreateTaskRequest{ID: id, Delay: "1h", Target: &client.Target{URL: "http://127.0.0.1:9/"}}); err != nil {
					t.Errorf("create %s: %v", id, err)
					return
				}
				mu.Lock()
				acks = append(acks, ack{id, time.Now()})
				mu.Unlock()
			}
		}(w)
	}
	waitFor(t, 20*time.Second, "load under way", func() bool { mu.Lock(); defer mu.Unlock(); return len(acks) >= 500 })

	began := time.Now()
	file := filepath.Join(t.TempDir(), "load.snap")
	out, err := hg(t, srv.addr, "snapshot", "save", file)
	waitFor(t, 20*time.Second, "250 creates after the save began", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range acks {
			if a.at.After(began) {
				n++
			}
		}
		return n >= 250
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("snapshot save under load: %v\n%s", err, out)
	}

	state := filepath.Join(t.TempDir(), "state.db")
	in, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := archive.Extract(in, state, nil)
	in.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsm.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, inArchive := 0, 0
	for _, a := range acks {
		_, err := f.Get(a.id)
		if err == nil {
			inArchive++
		}
		if a.at.Before(began) {
			before++
			if err != nil {
				t.Errorf("task %s acknowledged %v before the save began is not in the archive: %v", a.id, began.Sub(a.at), err)
			}
		}
	}
	t.Logf("snapshot under load: %d creates acknowledged, %d before the save began, all in the archive (index %d, %d tasks); %d after",
		len(acks), before, meta.Index, inArchive, len(acks)-before)
	if uint64(inArchive) != meta.Tasks.Total() {
		t.Fatalf("archive counts %d tasks, holds %d of ours", meta.Tasks.Total(), inArchive)
	}
}

// staleIDs lists the task ids a node holds in its own copy of the state.
func staleIDs(addr string) (map[string]bool, error) {
	resp, err := http.Get(addr + "/v1/tasks?stale=true&limit=1000")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page client.ListResponse
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, err
	}
	if page.NextPageToken != "" {
		return nil, fmt.Errorf("more than one page")
	}
	ids := map[string]bool{}
	for _, task := range page.Tasks {
		ids[task.ID] = true
	}
	return ids, nil
}

// TestDisasterRecovery loses every node of a three-node cluster after a
// backup taken through a follower. As the README says to: one fresh node
// restores the backup, two fresh nodes join it. Every node then holds the
// restored tasks, and every task fires, none early, none lost.
func TestDisasterRecovery(t *testing.T) {
	nodes := startCluster(t)
	_, follower := leaderAndFollower(t, nodes)
	recv := newCheckedReceiver(t)
	fc := client.New(follower.addr(), "")
	due := createSpread(t, fc, "dr", 600, time.Now().Add(10*time.Second), 5*time.Millisecond, recv.URL)
	far := createSpread(t, fc, "far", 50, time.Now().Add(time.Hour), time.Millisecond, recv.URL)
	file := filepath.Join(t.TempDir(), "cluster.snap")
	if out, err := hg(t, follower.addr(), "snapshot", "save", file); err != nil || !strings.Contains(out, "tasks: 650 (scheduled 650") {
		t.Fatalf("save through a follower: %v\n%s", err, out)
	}
	for _, n := range nodes {
		n.srv.kill() // and their data directories are never used again
	}
	lost := time.Now()

	// A brand-new single node, then the backup, then two more nodes.
	gossip := freeAddr(t)
	first := launchServer(t, t.TempDir(), freeAddr(t), "--node-id", "d1", "--gossip-addr", gossip)
	first.waitReady()
	if out, err := hg(t, first.addr, "snapshot", "restore", file); err != nil || !strings.Contains(out, "tasks: 650") {
		t.Fatalf("restore into a new node: %v\n%s", err, out)
	}
	fresh := []*server{first}
	for _, id := range []string{"d2", "d3"} {
		s := launchServer(t, t.TempDir(), freeAddr(t), "--node-id", id, "--gossip-addr", freeAddr(t), "--join", gossip)
		s.waitReady()
		fresh = append(fresh, s)
	}
	waitFor(t, 30*time.Second, "three voters", func() bool {
		info, err := client.New(first.addr, "").Cluster(context.Background())
		if err != nil {
			return false
		}
		voters := 0
		for _, n := range info.Nodes {
			if n.Voter && (n.State == "leader" || n.State == "follower") {
				voters++
			}
		}
		return voters == 3
	})
	for i, s := range fresh {
		waitFor(t, 30*time.Second, fmt.Sprintf("node d%d holding every restored task", i+1), func() bool {
			ids, err := staleIDs(s.addr)
			if err != nil || len(ids) != len(due)+len(far) {
				return false
			}
			for id := range due {
				if !ids[id] {
					return false
				}
			}
			return true
		})
	}
	waitFor(t, 60*time.Second, "every restored task delivered", func() bool { return recv.count() >= len(due) })
	recv.verdict(t, "disaster recovery", due, nil, lost, 0)
	if ids, _ := staleIDs(fresh[2].addr); len(ids) != 650 {
		t.Fatalf("d3 holds %d tasks", len(ids))
	}
}

// TestRestoredOverdueTasksCatchUpAtTheRate restores a backup whose tasks
// fell due while it sat on the shelf: they all fire, none early, and at
// the configured catch-up rate rather than all at once.
func TestRestoredOverdueTasksCatchUpAtTheRate(t *testing.T) {
	const n, rate = 400, 200
	srv := startServer(t, t.TempDir(), freeAddr(t), "--catch-up-rate", fmt.Sprint(rate))
	c := client.New(srv.addr, "")
	recv := newCheckedReceiver(t)
	// Due far enough out that the save and the cancels below are done
	// before they fire, on a busy machine too.
	due := createSpread(t, c, "overdue", n, time.Now().Add(8*time.Second), 0, recv.URL)
	file := filepath.Join(t.TempDir(), "overdue.snap")
	if out, err := hg(t, srv.addr, "snapshot", "save", file); err != nil {
		t.Fatalf("save: %v\n%s", err, out)
	}
	// The live cluster moves on without them; by the restore they are
	// overdue.
	for id := range due {
		if _, err := c.CancelTask(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Until(due["overdue-0000"].Add(500 * time.Millisecond))) // all are due at that instant
	restored := time.Now()
	if out, err := hg(t, srv.addr, "snapshot", "restore", file); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "every overdue task delivered", func() bool { return recv.count() >= n })
	recv.verdict(t, "overdue after a restore", due, nil, restored, 0)

	recv.mu.Lock()
	first, last := time.Time{}, time.Time{}
	for _, ds := range recv.got {
		for _, d := range ds {
			if first.IsZero() || d.at.Before(first) {
				first = d.at
			}
			if d.at.After(last) {
				last = d.at
			}
		}
	}
	recv.mu.Unlock()
	// At 200 a second (after a burst of a tenth of that), 400 tasks take
	// at least 1.8 s; all at once they would take milliseconds.
	spread := last.Sub(first)
	t.Logf("%d overdue tasks delivered over %v at --catch-up-rate %d", n, spread.Round(time.Millisecond), rate)
	if min := time.Duration(float64(n-rate/10-1) / rate * float64(time.Second) * 0.9); spread < min {
		t.Fatalf("overdue tasks delivered over %v: faster than the catch-up rate allows (%v)", spread, min)
	}
}

// TestBackupThatCrashesItsCheckerIsRefused is issue 17's probe of backups:
// an archive whose digests are right but whose state file makes bbolt
// fault (testdata/README.md says how it was made) once killed the server
// that was sent it, and "snapshot inspect". Now the check runs in a child
// process: the restore is refused with 400, the server lives on with its
// state unchanged, and inspect says the file crashed its checker.
func TestBackupThatCrashesItsCheckerIsRefused(t *testing.T) {
	const backup = "testdata/crashes-checker.hgsnap"
	out, err := hg(t, "", "snapshot", "inspect", backup)
	if err == nil || !strings.Contains(out, "crashed its checker") {
		t.Fatalf("snapshot inspect: %v\n%s", err, out)
	}
	srv := startServer(t, t.TempDir(), freeAddr(t))
	c := srv.client("")
	createAll(t, c, []client.CreateTaskRequest{{ID: "kept", Delay: "1h", Target: &client.Target{URL: "http://127.0.0.1:9/"}}})
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.addr+"/v1/snapshot", "application/gzip", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST /v1/snapshot: %v (did the server die?)", err)
	}
	var e client.ErrorResponse
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error.Message, "crashed its checker") || !strings.Contains(e.Error.Message, "nothing was changed") {
		t.Fatalf("restore of a backup that crashes its checker: HTTP %d %+v", resp.StatusCode, e.Error)
	}
	if task, err := c.GetTask(context.Background(), "kept"); err != nil || task.State != "scheduled" {
		t.Fatalf("after the refused restore: %+v %v", task, err)
	}
}
