package fsm

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// BenchmarkApplyCreates applies raft entries of 1 and of 1,000 creates
// (time-sortable UUIDv7 ids, a small JSON payload) and reports tasks/s and
// the state file's size per task.
// With due=ordered every task is due a fixed delay after its creation (order
// timeouts, reminders), so the due index grows at its end; with due=random
// due times are spread over the next hour, so inserts land all over it.
func BenchmarkApplyCreates(b *testing.B) {
	for _, bc := range []struct {
		name   string
		size   int
		random bool
	}{
		{"batch=1/due=ordered", 1, false},
		{"batch=1000/due=ordered", 1000, false},
		{"batch=1/due=random", 1, true},
		{"batch=1000/due=random", 1000, true},
	} {
		size := bc.size
		b.Run(bc.name, func(b *testing.B) {
			h := newHarness(b)
			rng := rand.New(rand.NewPCG(1, 2))
			now := time.Now().UnixNano()
			entries := make([][]byte, 0, 64)
			makeEntry := func() []byte {
				tasks := make([]*fsmpb.Task, size)
				for i := range tasks {
					now += 1000 // creation time moves on, 1 µs per task
					due := now + int64(30*time.Minute)
					if bc.random {
						due = now + rng.Int64N(int64(time.Hour))
					}
					tasks[i] = &fsmpb.Task{
						Id: uuid.Must(uuid.NewV7()).String(), Queue: "default",
						ExecuteAt: due, CreatedAt: now, UpdatedAt: now,
						Payload:     []byte(`{"order":12345,"action":"expire"}`),
						Target:      &fsmpb.Target{Url: "http://127.0.0.1:8080/hook", Method: "POST"},
						MaxAttempts: 5, Fingerprint: make([]byte, 32),
					}
				}
				data, err := EncodeEntry(create(tasks...))
				if err != nil {
					b.Fatal(err)
				}
				return data
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if len(entries) == 0 {
					for j := 0; j < cap(entries); j++ {
						entries = append(entries, makeEntry())
					}
				}
				data := entries[len(entries)-1]
				entries = entries[:len(entries)-1]
				h.index++
				b.StartTimer()
				h.f.Apply(&raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: data})
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "tasks/s")
			if st, err := os.Stat(h.path); err == nil {
				b.ReportMetric(float64(st.Size())/float64(b.N*size), "file-B/task")
			}
		})
	}
}

// BenchmarkApplyFireAndOutcome is the state machine's share of delivering
// a task: per op, one entry firing 1,000 due tasks and one recording their
// success, as the leader proposes them in a burst: with a small JSON
// payload, and with a 4 KiB one (kept apart from the record since
// 69c93d4: 15.9k, 15.9k, 18.5k tasks/s and 35 MB allocated per op
// before it, 31.6k, 35.0k, 33.0k and 13 MB after, alternating).
func BenchmarkApplyFireAndOutcome(b *testing.B) {
	b.Run("payload=33B", func(b *testing.B) { benchmarkFireAndOutcome(b, []byte(`{"order":12345,"action":"expire"}`)) })
	b.Run("payload=4KiB", func(b *testing.B) { benchmarkFireAndOutcome(b, make([]byte, 4096)) })
}

func benchmarkFireAndOutcome(b *testing.B, payload []byte) {
	const size = 1000
	h := newHarness(b)
	now := time.Now().UnixNano()
	apply := func(cmd *fsmpb.Command) {
		data, err := EncodeEntry(cmd)
		if err != nil {
			b.Fatal(err)
		}
		h.index++
		h.f.Apply(&raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: data})
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		tasks := make([]*fsmpb.Task, size)
		items := make([]*fsmpb.FireItem, size)
		outcomes := make([]*fsmpb.Outcome, size)
		for i := range tasks {
			now += 1000
			id := uuid.Must(uuid.NewV7()).String()
			tasks[i] = &fsmpb.Task{
				Id: id, Queue: "default", ExecuteAt: now, CreatedAt: now, UpdatedAt: now,
				Payload: payload,
				Target:  &fsmpb.Target{Url: "http://127.0.0.1:8080/hook", Method: "POST"}, Fingerprint: make([]byte, 32),
			}
			items[i] = &fsmpb.FireItem{Id: id, DueAt: now}
			outcomes[i] = &fsmpb.Outcome{Id: id, Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED, RetainUntil: now + int64(time.Hour)}
		}
		apply(create(tasks...))
		fire := &fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{Term: 1, At: now, Items: items}}}
		done := &fsmpb.Command{Kind: &fsmpb.Command_Outcomes{Outcomes: &fsmpb.RecordOutcomes{At: now, Outcomes: outcomes}}}
		b.StartTimer()
		apply(fire)
		apply(done)
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "tasks/s")
}
