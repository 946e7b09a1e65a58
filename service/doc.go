// Package service is where every write to a group's state enters: one
// typed method per operation (as etcd's RaftKV is), each building its
// raft command, proposing it and returning a typed result. The HTTP API,
// the console and the CLI (through the API) write only through it, and so
// does the group's leader (fires, outcomes, lease extensions, purges): no
// other package builds an fsmpb.Command or reads a raft result.
//
// It holds the business rules of writes that are not the state machine's
// to decide: a create's idempotency fingerprint, how long finished tasks
// are kept (retain_until), and the operations that span several raft
// entries (bulk cancel, shift and redrive, a chunk per entry), so that a
// router in front of several groups can send each call to the group that
// owns its tasks.
//
// Reads do not pass through here: they go to the state machine (fsm)
// directly, which serves them from its own snapshot of the state.
package service
