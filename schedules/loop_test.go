package schedules

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// direct is a Writer that applies each command to a state machine at
// once, as raft would after a commit.
type direct struct {
	t     *testing.T
	f     *fsm.FSM
	index uint64
}

func (d *direct) apply(cmd *fsmpb.Command) any {
	d.t.Helper()
	data, err := fsm.EncodeEntry(cmd)
	if err != nil {
		d.t.Fatal(err)
	}
	d.index++
	out, _ := d.f.Apply(&raft.Log{Index: d.index, Term: 1, Type: raft.LogCommand, Data: data}).([]any)
	if len(out) != 1 {
		d.t.Fatalf("apply %v: %v", cmd, out)
	}
	return out[0]
}

func (d *direct) CreateOccurrences(_ context.Context, cmd *fsmpb.CreateOccurrences) (*fsm.ScheduleResult, error) {
	return d.apply(&fsmpb.Command{Kind: &fsmpb.Command_CreateOccurrences{CreateOccurrences: cmd}}).(*fsm.ScheduleResult), nil
}

func (d *direct) put(s *fsmpb.Schedule, at time.Time) {
	d.t.Helper()
	res := d.apply(&fsmpb.Command{Kind: &fsmpb.Command_PutSchedule{PutSchedule: &fsmpb.PutSchedule{
		Schedule: s, Create: true, At: at.UnixNano(),
	}}}).(*fsm.ScheduleResult)
	if res.Err != nil {
		d.t.Fatalf("put schedule %s: %v", s.Id, res.Err)
	}
}

func everyMinute(id, zone string, created, next time.Time) *fsmpb.Schedule {
	return &fsmpb.Schedule{
		Id: id, Every: int64(time.Minute), TimeZone: zone, CreatedAt: created.UnixNano(), NextAt: next.UnixNano(),
		Fingerprint: []byte(id),
		Template:    &fsmpb.Task{Queue: "default", MaxAttempts: 1, Target: &fsmpb.Target{Url: "http://127.0.0.1:1/"}},
	}
}

// More schedules than a page of the due list that this build cannot read
// (a zone its database lacks), all due before a good one: the good one
// still gets its occurrence.
func TestUnreadableSchedulesDoNotBlockOthers(t *testing.T) {
	f, err := fsm.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w := &direct{t: t, f: f}
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := created.Add(time.Minute)
	for i := range 250 {
		w.put(everyMinute(fmt.Sprintf("bad-%03d", i), "Mars/Olympus_Mons", created, now.Add(-time.Second)), created)
	}
	w.put(everyMinute("good", "UTC", created, now), created)

	l := New(f, w, Config{Now: func() time.Time { return now }})
	l.once(context.Background())

	due, err := f.DueSchedules(now.Add(Lookahead).UnixNano(), nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 250 {
		t.Errorf("%d schedules still due within the lookahead, want the 250 unreadable ones", len(due))
	}
	for _, s := range due {
		if s.Id == "good" {
			t.Fatalf("the good schedule is still due at %v: its occurrence was not created", time.Unix(0, s.NextAt))
		}
	}
}
