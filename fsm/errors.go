package fsm

import "errors"

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
	// ErrVersionMismatch: a compare-and-set saw another version.
	ErrVersionMismatch = errors.New("version mismatch")
)
