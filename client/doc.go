// Package client is the Go SDK for Hourglass's HTTP API, and the home of
// the API's wire types (the server encodes the same structs). The CLI and
// the benchmark use it; so can any Go program:
//
//	c := client.New("http://127.0.0.1:7070", "")
//	task, err := c.CreateTask(ctx, client.CreateTaskRequest{
//		Delay:   "90s",
//		Payload: json.RawMessage(`{"order":42}`),
//		Target:  &client.Target{URL: "http://billing.internal/expire"},
//	})
//
// A task without a Target is leased by pull workers of its queue. A
// Worker runs a handler per task name, N at a time, extends each lease
// while its handler runs, acks or nacks from the handler's error, and
// shuts down gracefully when its context ends:
//
//	mux := client.NewServeMux()
//	mux.HandleFunc("email:send", func(ctx context.Context, t *client.LeasedTask) error {
//		return sendEmail(ctx, t.Payload) // nil: ack; an error: retried by the queue's policy
//	})
//	w := client.NewWorker(c, client.WorkerConfig{Queue: "emails", Concurrency: 20})
//	err := w.Run(ctx, mux)
//
// Errors from the server are *Error values carrying the HTTP status and the
// API's error code; errors.Is matches them against ErrNotFound,
// ErrConflict and the other sentinels.
package client
