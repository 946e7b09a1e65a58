package history

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op is a call of client 1 on task "t" from call to ret.
func op(in Input, call, ret int64, out Output) porcupine.Operation {
	if in.ID == "" {
		in.ID = "t"
	}
	return porcupine.Operation{ClientId: 1, Input: in, Call: call, Output: out, Return: ret}
}

var (
	created5  = Output{State: "scheduled", Version: 5}
	cancelled = Output{State: "cancelled", Version: 7}
	running   = Output{State: "running", Version: 8}
	unknown   = Output{Unknown: true}
)

// TestModel: histories of one task that are linearizable and some that
// are not, each for the reason it names.
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
		ops  []porcupine.Operation
	}{
		{"create, read, cancel, read", true, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpGet}, 20, 30, created5),
			op(Input{Op: OpCancel}, 40, 50, cancelled),
			op(Input{Op: OpGet}, 60, 70, cancelled),
		}},
		{"fired, then a cancel refused and a delivery", true, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpGet}, 20, 30, running),
			op(Input{Op: OpCancel}, 40, 50, Output{Status: 409}),
			op(Input{Op: OpDelivered}, 0, 60, Output{}),
		}},
		{"a read after the create returned misses it", false, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpGet}, 20, 30, Output{Status: 404}),
		}},
		{"a create without an answer takes effect later", true, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, unanswered, unknown),
			op(Input{Op: OpGet}, 20, 30, Output{Status: 404}),
			op(Input{Op: OpGet}, 40, 50, created5),
		}},
		{"a cancel answered 200 and a delivery", false, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpCancel}, 20, 40, cancelled),
			op(Input{Op: OpDelivered}, 0, 30, Output{}),
		}},
		{"a cancel answered 200 after a read saw it fired", false, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpGet}, 20, 30, running),
			op(Input{Op: OpCancel}, 40, 50, cancelled),
		}},
		{"a fired task read back as scheduled", false, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpGet}, 20, 30, running),
			op(Input{Op: OpGet}, 40, 50, created5),
		}},
		{"an update at the version read", true, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpUpdate, IfVersion: 5}, 20, 30, Output{State: "scheduled", Version: 9}),
			op(Input{Op: OpGet}, 40, 50, Output{State: "scheduled", Version: 9}),
		}},
		{"a read of the version an update replaced", false, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpUpdate, IfVersion: 5}, 20, 30, Output{State: "scheduled", Version: 9}),
			op(Input{Op: OpGet}, 40, 50, created5),
		}},
		{"If-Match refused at the current version", false, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpUpdate, IfVersion: 5}, 20, 30, Output{Status: 412}),
			op(Input{Op: OpGet}, 40, 50, created5),
		}},
		{"If-Match refused after a fire", true, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpUpdate, IfVersion: 5}, 20, 30, Output{Status: 412}),
			op(Input{Op: OpGet}, 40, 50, running),
		}},
		{"created twice", false, []porcupine.Operation{
			op(Input{Op: OpCreate}, 0, 10, created5),
			op(Input{Op: OpCancel}, 20, 30, cancelled),
			op(Input{Op: OpCreate}, 40, 50, Output{State: "scheduled", Version: 11}),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := porcupine.CheckOperationsTimeout(Model(), tc.ops, 10*time.Second)
			if want := porcupine.Ok; !tc.ok {
				if got != porcupine.Illegal {
					t.Fatalf("checked %v, want Illegal", got)
				}
			} else if got != want {
				t.Fatalf("checked %v, want %v", got, want)
			}
		})
	}
}
