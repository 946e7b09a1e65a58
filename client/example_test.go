package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// A pull worker: tasks created without a target in queue "emails" are
// leased to it when they fall due.
func ExampleWorker() {
	c := client.New("http://127.0.0.1:7070", "")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// Schedule one (no target: a worker pulls it).
	_, err := c.CreateTask(ctx, client.CreateTaskRequest{
		Queue: "emails", Name: "email:send", Delay: "10s",
		Payload: json.RawMessage(`{"to":"ada@example.com"}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	mux := client.NewServeMux()
	mux.HandleFunc("email:send", func(ctx context.Context, t *client.LeasedTask) error {
		var msg struct{ To string }
		if err := json.Unmarshal(t.Payload, &msg); err != nil {
			return err // a failed attempt: retried by the queue's policy
		}
		fmt.Println("sending to", msg.To, "attempt", t.Attempt)
		return nil // acknowledged
	})
	w := client.NewWorker(c, client.WorkerConfig{Queue: "emails", Concurrency: 20, Lease: time.Minute})
	if err := w.Run(ctx, mux); err != nil { // until Ctrl-C, then a graceful stop
		fmt.Println(err)
	}
}

// A nightly clean-up at 02:30 Berlin time, leased by the workers of
// queue "maintenance": each run is a task "nightly-cleanup@<UTC time>".
func ExampleClient_CreateSchedule() {
	c := client.New("http://127.0.0.1:7070", "")
	s, err := c.CreateSchedule(context.Background(), client.ScheduleRequest{
		ID:       "nightly-cleanup",
		Cron:     "30 2 * * *",
		TimeZone: "Europe/Berlin",
		Overlap:  "skip", // not while last night's still runs
		Task:     &client.TaskTemplate{Queue: "maintenance", Name: "cleanup", MaxLateness: "1h"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("next runs:", s.NextRuns)
}
