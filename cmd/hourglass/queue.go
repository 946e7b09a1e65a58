package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

const queueUsage = `Usage:
  hourglass queue list                  every queue, with its tasks by state
  hourglass queue get NAME              a queue's settings and task counts
  hourglass queue pause NAME            stop its deliveries and leases
  hourglass queue resume NAME           start them again
  hourglass queue redrive NAME [--id ID]
                                        dead tasks back to scheduled (all, or one)
`

func runQueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, err := subcommand("queue", queueUsage, args, stderr)
	if err != nil {
		return err
	}
	server := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON rather than a summary")
	id := fs.String("id", "", "redrive: only this dead task")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if *id != "" && args[0] != "redrive" {
		return fmt.Errorf("%w: --id is for queue redrive", errUsage)
	}
	c, err := server.connect()
	if err != nil {
		return err
	}
	if args[0] == "list" {
		if len(rest) > 0 {
			return fmt.Errorf("%w: queue list takes no arguments, got %q", errUsage, rest)
		}
		queues, err := c.ListQueues(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, queues)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "QUEUE\tSCHEDULED\tRUNNING\tSUCCEEDED\tDEAD\tCANCELLED\tEXPIRED\tLIMITS")
		for _, q := range queues {
			t := q.Tasks
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", q.Name, t["scheduled"], t["running"], t["succeeded"], t["dead"], t["cancelled"], t["expired"], limits(q))
		}
		return tw.Flush()
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: queue %s takes one queue name", errUsage, args[0])
	}
	name := rest[0]
	var q *client.Queue
	switch args[0] {
	case "get":
		q, err = c.GetQueue(ctx, name)
	case "pause":
		q, err = c.PauseQueue(ctx, name)
	case "resume":
		q, err = c.ResumeQueue(ctx, name)
	case "redrive":
		n, err := c.Redrive(ctx, name, *id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "redriven: %d tasks of queue %s back to scheduled\n", n, name)
		return nil
	default:
		fmt.Fprint(stderr, queueUsage)
		return fmt.Errorf("%w: unknown queue subcommand %q", errUsage, args[0])
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, q)
	}
	fmt.Fprintf(stdout, "queue:   %s\nlimits:  %s\ntasks:  ", q.Name, limits(*q))
	states := make([]string, 0, len(q.Tasks))
	for s := range q.Tasks {
		states = append(states, s)
	}
	slices.Sort(states)
	for _, s := range states {
		fmt.Fprintf(stdout, " %s=%d", s, q.Tasks[s])
	}
	fmt.Fprintln(stdout)
	return nil
}

// limits says in a few words what a queue's settings do.
func limits(q client.Queue) string {
	var parts []string
	if q.Paused {
		parts = append(parts, "PAUSED")
	}
	if rl := q.RateLimit; rl != nil {
		parts = append(parts, fmt.Sprintf("%g/s (burst %d)", rl.PerSecond, rl.Burst))
	}
	if q.MaxConcurrent > 0 {
		parts = append(parts, fmt.Sprintf("%d at once", q.MaxConcurrent))
	}
	if q.MaxAttempts > 0 {
		parts = append(parts, fmt.Sprintf("%d attempts", q.MaxAttempts))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
