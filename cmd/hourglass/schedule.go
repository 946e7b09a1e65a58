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

const scheduleUsage = `Usage:
  hourglass schedule create (--cron EXPR | --every D) [--time-zone ZONE] [--url URL] [flags]
  hourglass schedule get ID             its rule, next runs and latest occurrences
  hourglass schedule list               every schedule
  hourglass schedule pause ID           no occurrences until resumed
  hourglass schedule resume ID          from its next run after now
  hourglass schedule delete ID          it, and its occurrences not started
`

func runSchedule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, err := subcommand("schedule", scheduleUsage, args, stderr)
	if err != nil {
		return err
	}
	server := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON rather than a summary")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	if args[0] == "create" {
		req := client.ScheduleRequest{Task: &client.TaskTemplate{Target: &client.Target{}}}
		headers := headerFlags{}
		payload := fs.String("payload", "", "JSON payload of every occurrence")
		paused := fs.Bool("paused", false, "create it paused")
		fs.StringVar(&req.ID, "id", "", "schedule id (default: a generated one)")
		fs.StringVar(&req.Cron, "cron", "", `cron expression, e.g. "30 2 * * *" (five fields, six with seconds first, or @daily and the like)`)
		fs.StringVar(&req.Every, "every", "", "a fixed interval instead of --cron, e.g. 15m (whole seconds, at least 1s)")
		fs.StringVar(&req.TimeZone, "time-zone", "", "IANA zone the cron expression is read in, e.g. Europe/Berlin (default UTC)")
		fs.StringVar(&req.StartAt, "start-at", "", "first possible run, RFC 3339")
		fs.StringVar(&req.EndAt, "end-at", "", "no run at or after this, RFC 3339")
		fs.StringVar(&req.Jitter, "jitter", "", "delay each occurrence by up to this, e.g. 30s")
		fs.StringVar(&req.Overlap, "overlap", "", "when the previous occurrence still runs: allow (default), skip or wait")
		fs.StringVar(&req.CatchUp, "catch-up", "", "after downtime: all (default, within --catch-up-window) or latest")
		fs.StringVar(&req.CatchUpWindow, "catch-up-window", "", "how late a missed occurrence may still run (default 24h)")
		fs.StringVar(&req.Task.Queue, "queue", "", "queue of the occurrences (default \"default\")")
		fs.StringVar(&req.Task.Name, "name", "", "a name for people to read")
		fs.StringVar(&req.Task.Target.URL, "url", "", "webhook URL each occurrence is delivered to (none: pull workers lease them)")
		fs.StringVar(&req.Task.Target.Method, "method", "", "HTTP method (default POST)")
		fs.StringVar(&req.Task.Target.Timeout, "timeout", "", "per-attempt timeout (default 10s)")
		fs.Var(headers, "header", "header sent with each delivery, NAME=VALUE (repeatable)")
		fs.IntVar(&req.Task.MaxAttempts, "max-attempts", 0, "attempts before an occurrence is dead (default: the queue's)")
		fs.StringVar(&req.Task.MaxLateness, "max-lateness", "", "no attempt starts later than this after its time")
		if rest, err := parseFlags(fs, args[1:]); err != nil {
			return err
		} else if len(rest) > 0 {
			return fmt.Errorf("%w: schedule create takes no arguments, got %q", errUsage, rest)
		}
		if *payload != "" {
			req.Task.Payload = json.RawMessage(*payload)
		}
		if *paused {
			req.Paused = paused
		}
		if len(headers) > 0 {
			req.Task.Target.Headers = headers
		}
		if t := req.Task.Target; t.URL == "" && t.Method == "" && t.Timeout == "" && len(headers) == 0 {
			req.Task.Target = nil // pull workers lease the occurrences
		}
		c, err := server.connect()
		if err != nil {
			return err
		}
		s, err := c.CreateSchedule(ctx, req)
		if err != nil {
			return err
		}
		return printSchedule(stdout, s, *asJSON)
	}

	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	c, err := server.connect()
	if err != nil {
		return err
	}
	if args[0] == "list" {
		if len(rest) > 0 {
			return fmt.Errorf("%w: schedule list takes no arguments, got %q", errUsage, rest)
		}
		list, err := c.ListSchedules(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tRULE\tZONE\tNEXT RUN\tOCCURRENCES\tSTATE")
		for _, s := range list {
			next, state := "-", "active"
			if len(s.NextRuns) > 0 {
				next = s.NextRuns[0].Format(time.RFC3339)
			}
			if s.Paused {
				state = "paused"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.ID, rule(s), s.TimeZone, next, s.Occurrences, state)
		}
		return tw.Flush()
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: schedule %s takes one schedule id", errUsage, args[0])
	}
	id := rest[0]
	var s *client.Schedule
	switch args[0] {
	case "get":
		s, err = c.GetSchedule(ctx, id)
	case "pause":
		s, err = c.PauseSchedule(ctx, id)
	case "resume":
		s, err = c.ResumeSchedule(ctx, id)
	case "delete":
		if err := c.DeleteSchedule(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted: schedule %s (its occurrences not started with it)\n", id)
		return nil
	default:
		fmt.Fprint(stderr, scheduleUsage)
		return fmt.Errorf("%w: unknown schedule subcommand %q", errUsage, args[0])
	}
	if err != nil {
		return err
	}
	return printSchedule(stdout, s, *asJSON)
}

// rule says a schedule's rule in a few words.
func rule(s client.Schedule) string {
	if s.Cron != "" {
		return "cron " + s.Cron
	}
	return "every " + s.Every
}

func printSchedule(w io.Writer, s *client.Schedule, asJSON bool) error {
	if asJSON {
		return writeJSON(w, s)
	}
	state := "active"
	if s.Paused {
		state = "paused"
	}
	fmt.Fprintf(w, "schedule:     %s (%s, version %d)\n", s.ID, state, s.Version)
	fmt.Fprintf(w, "rule:         %s in %s", rule(*s), s.TimeZone)
	if s.Jitter != "" {
		fmt.Fprintf(w, ", jitter up to %s", s.Jitter)
	}
	fmt.Fprintf(w, "\npolicies:     overlap %s, catch-up %s within %s\n", s.Overlap, s.CatchUp, s.CatchUpWindow)
	target := "pull workers of queue " + s.Task.Queue
	if s.Task.Target != nil {
		target = s.Task.Target.URL + " (queue " + s.Task.Queue + ")"
	}
	fmt.Fprintf(w, "delivers to:  %s\n", target)
	fmt.Fprintf(w, "occurrences:  %d created, %d missed\n", s.Occurrences, s.Missed)
	if len(s.NextRuns) > 0 {
		runs := make([]string, len(s.NextRuns))
		for i, r := range s.NextRuns {
			runs[i] = r.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "next runs:    %s\n", strings.Join(runs, "\n              "))
	}
	if len(s.Recent) > 0 {
		fmt.Fprintln(w, "recent:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, o := range s.Recent {
			line := fmt.Sprintf("  %s\t%s\tattempts %d", o.TaskID, o.State, o.Attempts)
			if o.LastError != "" {
				line += "\t" + o.LastError
			}
			fmt.Fprintln(tw, line)
		}
		return tw.Flush()
	}
	return nil
}
