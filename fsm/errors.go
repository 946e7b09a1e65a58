package fsm

import (
	"errors"
	"fmt"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// Business errors, returned as values in apply results (never as the
// failure of an apply: the log entry itself applied fine).
var (
	// ErrNotFound: no task with that id.
	ErrNotFound = errors.New("task not found")
	// ErrConflict: the task exists in a state or shape that forbids the
	// change (another body under the same id, cancel of a finished task).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a command the API should have refused (an empty id, say)
	// reached the log; it is refused here too, the same way on every node.
	ErrInvalid = errors.New("invalid command")
	// ErrLocked: another process has the state file open.
	ErrLocked = errors.New("state file is locked")
	// ErrDamaged: the state file is not a whole bbolt file (bad meta
	// pages or checksums, or pages that make bbolt fault).
	ErrDamaged = errors.New("state file is damaged")
	// ErrVersionMismatch: a compare-and-set saw another version.
	ErrVersionMismatch = errors.New("version mismatch")
)

// businessError is a message that matches a sentinel with errors.Is
// without repeating the sentinel's text.
type businessError struct {
	kind error
	msg  string
}

func (e *businessError) Error() string { return e.msg }
func (e *businessError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &businessError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// describe says what state a task is in, as the end of a sentence.
func describe(state fsmpb.State) string {
	switch state {
	case fsmpb.State_SCHEDULED:
		return "is scheduled"
	case fsmpb.State_RUNNING:
		return "is running (being delivered, or leased to a worker)"
	case fsmpb.State_SUCCEEDED:
		return "has already succeeded"
	case fsmpb.State_DEAD:
		return "is dead (its attempts are exhausted)"
	case fsmpb.State_CANCELLED:
		return "was cancelled"
	case fsmpb.State_EXPIRED:
		return "has expired (it could not start within its max_lateness)"
	}
	return "is in an unknown state"
}
