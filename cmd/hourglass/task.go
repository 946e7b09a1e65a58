package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

const taskUsage = `Usage:
  hourglass task create [--url URL] (--delay D | --at TIME) [flags]
  hourglass task get ID
  hourglass task cancel ID
  hourglass task list [--queue Q] [--state S] [--limit N]
`

// headerFlags collects repeated --header K=V flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return fmt.Sprint(map[string]string(h)) }
func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	h[k] = val
	return nil
}

func runTask(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, err := subcommand("task", taskUsage, args, stderr)
	if err != nil {
		return err
	}
	server := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON rather than a summary")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	switch args[0] {
	case "create":
		var req client.CreateTaskRequest
		req.Target = &client.Target{}
		headers := headerFlags{}
		payload := fs.String("payload", "", "JSON payload delivered as the request body")
		fs.StringVar(&req.ID, "id", "", "task id (default: a generated time-ordered id)")
		fs.StringVar(&req.Queue, "queue", "", "queue name (default \"default\")")
		fs.StringVar(&req.Name, "name", "", "a name for people to read")
		fs.StringVar(&req.Delay, "delay", "", "deliver after this long, e.g. 90s or 1h30m")
		fs.StringVar(&req.ExecuteAt, "at", "", "deliver at this RFC 3339 time, e.g. 2030-01-02T15:04:05Z")
		fs.StringVar(&req.Target.URL, "url", "", "webhook URL the task is delivered to (none: pull workers of its queue lease it)")
		fs.StringVar(&req.Target.Method, "method", "", "HTTP method (default POST)")
		fs.StringVar(&req.Target.Timeout, "timeout", "", "per-attempt timeout (default 10s)")
		fs.Var(headers, "header", "header sent with the delivery, NAME=VALUE (repeatable)")
		fs.IntVar(&req.MaxAttempts, "max-attempts", 0, "attempts before the task is dead (default: the queue's, 5 unless set)")
		fs.StringVar(&req.MaxLateness, "max-lateness", "", "no attempt starts later than this after its time, e.g. 5m (else it expires)")
		if rest, err := parseFlags(fs, args[1:]); err != nil {
			return err
		} else if len(rest) > 0 {
			return fmt.Errorf("%w: task create takes no arguments, got %q", errUsage, rest)
		}
		if *payload != "" {
			req.Payload = json.RawMessage(*payload)
		}
		if len(headers) > 0 {
			req.Target.Headers = headers
		}
		if req.Target.URL == "" && req.Target.Method == "" && req.Target.Timeout == "" && len(headers) == 0 {
			req.Target = nil // a pull task
		}
		c, err := server.connect()
		if err != nil {
			return err
		}
		task, err := c.CreateTask(ctx, req)
		if err != nil {
			return err
		}
		return printTask(stdout, task, *asJSON)
	case "get", "cancel":
		rest, err := parseFlags(fs, args[1:])
		if err != nil {
			return err
		}
		if len(rest) != 1 {
			return fmt.Errorf("%w: task %s takes one task id", errUsage, args[0])
		}
		c, err := server.connect()
		if err != nil {
			return err
		}
		var task *client.Task
		if args[0] == "get" {
			task, err = c.GetTask(ctx, rest[0])
		} else {
			task, err = c.CancelTask(ctx, rest[0])
		}
		if err != nil {
			return err
		}
		return printTask(stdout, task, *asJSON)
	case "list":
		var opt client.ListOptions
		fs.StringVar(&opt.Queue, "queue", "", "only this queue")
		fs.StringVar(&opt.State, "state", "", "only this state: scheduled, running, succeeded, dead, cancelled or expired")
		fs.IntVar(&opt.Limit, "limit", 50, "most tasks to show")
		fs.StringVar(&opt.PageToken, "page-token", "", "continue from a previous list")
		if rest, err := parseFlags(fs, args[1:]); err != nil {
			return err
		} else if len(rest) > 0 {
			return fmt.Errorf("%w: task list takes no arguments, got %q", errUsage, rest)
		}
		c, err := server.connect()
		if err != nil {
			return err
		}
		page, err := c.ListTasks(ctx, opt)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, page)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tQUEUE\tSTATE\tEXECUTE_AT\tATTEMPTS")
		for _, t := range page.Tasks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", t.ID, t.Queue, t.State, t.ExecuteAt.Format(time.RFC3339Nano), t.Attempts)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if page.NextPageToken != "" {
			fmt.Fprintf(stdout, "more: --page-token %s\n", page.NextPageToken)
		}
		return nil
	default:
		fmt.Fprint(stderr, taskUsage)
		return fmt.Errorf("%w: unknown task subcommand %q", errUsage, args[0])
	}
}

func printTask(w io.Writer, t *client.Task, asJSON bool) error {
	if asJSON {
		return writeJSON(w, t)
	}
	limit := "the queue's limit"
	if t.MaxAttempts > 0 {
		limit = fmt.Sprint(t.MaxAttempts)
	}
	fmt.Fprintf(w, "id:          %s\nqueue:       %s\nstate:       %s\nexecute_at:  %s\nattempts:    %d of %s\n",
		t.ID, t.Queue, t.State, t.ExecuteAt.Format(time.RFC3339Nano), t.Attempts, limit)
	if t.Target != nil {
		fmt.Fprintf(w, "target:      %s %s\n", t.Target.Method, t.Target.URL)
	} else {
		fmt.Fprintf(w, "target:      none (pull workers of queue %s lease it)\n", t.Queue)
	}
	if t.LeaseExpiresAt != nil {
		fmt.Fprintf(w, "leased till: %s\n", t.LeaseExpiresAt.Format(time.RFC3339Nano))
	}
	if t.LastError != "" {
		fmt.Fprintf(w, "last_error:  %s\n", t.LastError)
	}
	if t.NextAttemptAt != nil {
		fmt.Fprintf(w, "next_try:    %s\n", t.NextAttemptAt.Format(time.RFC3339Nano))
	}
	if t.CompletedAt != nil {
		fmt.Fprintf(w, "completed:   %s\n", t.CompletedAt.Format(time.RFC3339Nano))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
