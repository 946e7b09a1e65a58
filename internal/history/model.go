package history

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// Op is an API call on one task.
type Op uint8

const (
	OpCreate    Op = iota // POST /v1/tasks (or one item of a batch)
	OpGet                 // GET /v1/tasks/{id} (or the task in a list)
	OpCancel              // DELETE /v1/tasks/{id}
	OpUpdate              // PATCH /v1/tasks/{id} with If-Match
	OpDelivered           // the receiver got a delivery of the task
)

func (o Op) String() string {
	return [...]string{"create", "get", "cancel", "update", "delivered"}[o]
}

// Input is what a call asked.
type Input struct {
	Op        Op
	ID        string
	IfVersion uint64 // OpUpdate: If-Match (0: none)
}

// Output is what a call answered.
type Output struct {
	// Unknown: no answer (a timeout, a connection cut, a 5xx): a write
	// may or may not have happened.
	Unknown bool
	// Status is the HTTP status of an error answer (404, 409, 412); 0
	// for success.
	Status int
	// State and Version are the task's, in a successful answer.
	State   string
	Version uint64
}

// task is the model's state of one task. Version 0 is unknown: every
// change moves the version (to the raft index of its entry), so it is
// known only from an answer, and unknown again after a fire or cancel.
type task struct {
	Exists, Fired, Cancelled bool
	Version                  uint64
}

// Model is the model of a task, for porcupine: histories are split by
// task id. A fire is not a call: the model may fire a scheduled task
// before any step.
func Model() porcupine.Model { return taskModel.ToModel() }

var taskModel = porcupine.NondeterministicModel{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		byID := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range ops {
			id := op.Input.(Input).ID
			if _, ok := byID[id]; !ok {
				order = append(order, id)
			}
			byID[id] = append(byID[id], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, id := range order {
			out = append(out, byID[id])
		}
		return out
	},
	Init: func() []any { return []any{task{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(task), input.(Input), output.(Output)
		candidates := []task{s}
		if s.Exists && !s.Fired && !s.Cancelled {
			candidates = append(candidates, task{Exists: true, Fired: true})
		}
		var next []any
		for _, c := range candidates {
			for _, n := range step(c, in, out) {
				next = append(next, n)
			}
		}
		return next
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		call := in.Op.String()
		if in.Op == OpUpdate {
			call += fmt.Sprintf(" if-match %d", in.IfVersion)
		}
		switch {
		case out.Unknown:
			return call + " → no answer"
		case out.Status != 0:
			return fmt.Sprintf("%s → %d", call, out.Status)
		case in.Op == OpDelivered:
			return call
		}
		return fmt.Sprintf("%s → %s v%d", call, out.State, out.Version)
	},
	DescribeState: func(state any) string {
		s := state.(task)
		switch {
		case !s.Exists:
			return "none"
		case s.Cancelled:
			return "cancelled"
		case s.Fired:
			return "fired"
		case s.Version == 0:
			return "scheduled"
		}
		return fmt.Sprintf("scheduled v%d", s.Version)
	},
}

// step is what call in answered out does to a task in state s: the
// states it may leave, none when the answer is impossible.
func step(s task, in Input, out Output) []task {
	if out.Unknown {
		// It happened, or it did not.
		done := []task{s}
		switch in.Op {
		case OpCreate:
			if !s.Exists {
				done = append(done, task{Exists: true})
			}
		case OpCancel:
			if s.Exists && !s.Fired {
				done = append(done, task{Exists: true, Cancelled: true})
			}
		case OpUpdate:
			if s.Exists && !s.Fired && !s.Cancelled && matches(s, in) {
				done = append(done, task{Exists: true})
			}
		}
		return done
	}
	switch in.Op {
	case OpCreate:
		switch {
		case out.Status != 0:
			return nil // a create of these tests is never refused
		case !s.Exists:
			if out.State != "scheduled" {
				return nil
			}
			return []task{{Exists: true, Version: out.Version}}
		default: // an earlier attempt created it: answered as a get
			return observe(s, out)
		}
	case OpGet:
		switch out.Status {
		case 404:
			return when(!s.Exists, s)
		case 0:
			return observe(s, out)
		}
	case OpCancel:
		switch out.Status {
		case 404:
			return when(!s.Exists, s)
		case 409:
			return when(s.Exists && s.Fired, s)
		case 0:
			return when(s.Exists && !s.Fired, task{Exists: true, Cancelled: true})
		}
	case OpUpdate:
		switch out.Status {
		case 404:
			return when(!s.Exists, s)
		case 412:
			return when(s.Exists && in.IfVersion != 0 && (s.Version == 0 || s.Version != in.IfVersion), s)
		case 409:
			return when(s.Exists && (s.Fired || s.Cancelled) && matches(s, in), s)
		case 0:
			return when(s.Exists && !s.Fired && !s.Cancelled && matches(s, in) && out.State == "scheduled",
				task{Exists: true, Version: out.Version})
		}
	case OpDelivered:
		return when(s.Exists && s.Fired, s)
	}
	return nil
}

// matches reports whether an update's If-Match may be at the version of
// s (none given: any version).
func matches(s task, in Input) bool {
	return in.IfVersion == 0 || s.Version == 0 || s.Version == in.IfVersion
}

// observe is a successful read of a task in state s.
func observe(s task, out Output) []task {
	if !s.Exists {
		return nil
	}
	switch out.State {
	case "scheduled":
		if s.Fired || s.Cancelled || s.Version != 0 && s.Version != out.Version {
			return nil
		}
		return []task{{Exists: true, Version: out.Version}}
	case "cancelled":
		return when(s.Cancelled, s)
	default: // running, succeeded, dead, expired: it left scheduled, not by a cancel
		return when(s.Fired, s)
	}
}

func when(ok bool, s task) []task {
	if ok {
		return []task{s}
	}
	return nil
}
