package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
)

// runCheckState is "hourglass check-state FILE", an internal command: it
// checks the state file FILE (fsm.CheckStateFile) and prints what it holds
// as JSON. The server and "snapshot inspect" run it as a child process on
// a state file from a backup, so that a damaged file which makes bbolt
// fault (SIGBUS, reading past its memory map) ends the child, not them.
func runCheckState(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: check-state takes one state file", errUsage)
	}
	// A damaged file can make the check allocate without end (seen: 24
	// GB): cap this process's private memory (the file's own memory map
	// does not count), so that it dies instead of the machine swapping.
	if st, err := os.Stat(args[0]); err == nil {
		limitMemory(max(2<<30, 4*uint64(st.Size())))
	}
	info, err := fsm.CheckStateFile(args[0])
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(info)
}

// checkStateTimeout bounds one check of a backup's state file (a whole
// check of 1M tasks takes seconds here).
const checkStateTimeout = 15 * time.Minute

// childStateChecker checks state files with "hourglass check-state" in a
// child process of this same binary.
func childStateChecker() (archive.Checker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary to check backups with: %w", err)
	}
	return func(path string) (*fsm.StateInfo, error) {
		ctx, cancel := context.WithTimeout(context.Background(), checkStateTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe, "check-state", path)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			out := strings.TrimSpace(stderr.String())
			if msg, ok := strings.CutPrefix(out, "hourglass: "); ok && !strings.Contains(msg, "\n") {
				return nil, errors.New(msg) // the checker's own verdict
			}
			// A runtime crash (bbolt faulted on the file: SIGBUS or
			// SIGSEGV), or a kill: say which, not the whole dump.
			why := err.Error()
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "[signal ") || strings.HasPrefix(line, "fatal error:") {
					why = strings.Trim(line, "[]")
					break
				}
			}
			return nil, fmt.Errorf("the state file crashed its checker (%s): it is damaged", why)
		}
		var info fsm.StateInfo
		if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
			return nil, fmt.Errorf("the state file checker answered %q: %w", stdout.String(), err)
		}
		return &info, nil
	}, nil
}
