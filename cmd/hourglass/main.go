// Command hourglass is Hourglass's one binary: the server and the command
// line client.
//
//	hourglass server                  run a node (single-node cluster in ./hourglass-data)
//	hourglass task create|get|cancel|list
//	hourglass snapshot save|inspect|restore FILE
//	hourglass cluster members|groups|remove
//	hourglass token create
//	hourglass signing-key|gossip-key create
//	hourglass tls ca|cert
//	hourglass receive                 print deliveries (a webhook target for trying it out)
//	hourglass bench                   load generator with a checker
//
// Run "hourglass help" or "hourglass COMMAND -h" for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `Hourglass: a replicated delayed-task scheduler.

Usage:
  hourglass server [flags]            run a node (no flags: a single-node
                                      cluster in ./hourglass-data, HTTP on
                                      127.0.0.1:7070)
  hourglass task create [flags]       schedule a task
  hourglass task get ID               show a task
  hourglass task cancel ID            cancel a scheduled task
  hourglass task list [flags]         list tasks
  hourglass queue list|get|pause|resume|redrive
                                      see and steer queues
  hourglass schedule create|get|list|pause|resume|delete
                                      recurring tasks: cron or every, in
                                      a time zone
  hourglass snapshot save FILE        back up the whole cluster into FILE
  hourglass snapshot inspect FILE     check a backup offline, show what it holds
  hourglass snapshot restore FILE     replace the whole cluster's state with a
                                      backup
  hourglass token create [flags]      make an API token for --tokens-file
  hourglass signing-key create        make a webhook signing key
  hourglass gossip-key create         make a gossip encryption key
  hourglass tls ca|cert               make a cluster CA, and certificates
                                      for nodes and clients
  hourglass cluster members           list the cluster's nodes
  hourglass cluster remove ID         take a node out of the cluster
  hourglass receive [flags]           a webhook receiver that prints what
                                      it gets (for trying Hourglass out)
  hourglass bench [flags]             load generator: create tasks, receive
                                      their deliveries, report throughput,
                                      lateness and lost/early/duplicates
  hourglass version                   print the version

Run "hourglass COMMAND -h" for a command's flags. Every flag can also be
set through the environment: --http-addr as HOURGLASS_HTTP_ADDR, and so on.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks an error in how the command was called (exit status 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		err = runServer(ctx, args[1:], stderr)
	case "task":
		err = runTask(ctx, args[1:], stdout, stderr)
	case "queue":
		err = runQueue(ctx, args[1:], stdout, stderr)
	case "schedule":
		err = runSchedule(ctx, args[1:], stdout, stderr)
	case "cluster":
		err = runCluster(ctx, args[1:], stdout, stderr)
	case "snapshot":
		err = runSnapshot(ctx, args[1:], stdout, stderr)
	case "token":
		err = runToken(ctx, args[1:], stdout, stderr)
	case "signing-key":
		err = runSigningKey(args[1:], stdout, stderr)
	case "gossip-key":
		err = runGossipKey(args[1:], stdout, stderr)
	case "tls":
		err = runTLS(args[1:], stdout, stderr)
	case "receive":
		err = runReceive(ctx, args[1:], stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "check-state": // internal: see runCheckState
		err = runCheckState(args[1:], stdout)
	case "version", "-version", "--version", "-v":
		fmt.Fprintln(stdout, "hourglass", buildVersion())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "hourglass: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "hourglass: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "hourglass: %v\n", err)
		return 1
	}
}

// subcommand starts a "hourglass GROUP SUB" command: it prints the
// group's usage and fails when SUB is missing, else returns SUB's flag set.
func subcommand(group, usage string, args []string, stderr io.Writer) (*flag.FlagSet, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("%w: %s needs a subcommand", errUsage, group)
	}
	fs := flag.NewFlagSet("hourglass "+group+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, nil
}

// parseFlags parses args, flags and positional arguments in any order, and
// returns the positional ones. A flag not given on the command line is
// taken from its HOURGLASS_* environment variable.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "HOURGLASS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%w: %s=%q: %v", errUsage, env, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
