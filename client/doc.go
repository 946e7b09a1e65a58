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
// Errors from the server are *Error values carrying the HTTP status and the
// API's error code; errors.Is matches them against ErrNotFound,
// ErrConflict and the other sentinels.
package client
