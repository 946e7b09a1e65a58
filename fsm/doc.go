// Package fsm is Hourglass's replicated state machine: the task model, the
// encoding of raft log entries, the bbolt schema with its indexes, and the
// raft.BatchingFSM that applies entries, snapshots and restores.
//
// Storage (one bbolt file):
//
//	tasks     id → Task (protobuf); a payload longer than 512 bytes
//	          is not in it but in payloads
//	payloads  id → payload                 written once, at create (or
//	                                       an update of the payload): a
//	                                       state change rewrites only
//	                                       the record
//	due       be(due_at) ‖ id → route      scheduled tasks in time order
//	expire    be(retain_until) ‖ id → ∅    finished tasks in purge order
//	by_state  state ‖ queue ‖ 0 ‖ id → ∅   listing by state and queue (its
//	                                       running prefix: attempts in flight)
//	queues    name → Queue (protobuf)      a queue's settings
//	counts    queue ‖ 0 ‖ state → be(n)    tasks per queue and state
//	meta      "applied" → be(raft index), "applied_term" → be(its term),
//	          "schema" → be(version)
//
// Apply never reads a clock and never does I/O beyond its own file: every
// timestamp travels in the command. A batch of log entries is applied in one
// bbolt transaction. The file is opened NoSync (the raft log is the durable
// record) and synced before a snapshot is taken and on close. The applied
// raft index is stored with the data, so entries at or below it are skipped
// when raft replays its log after a restart.
//
// Backup gives a consistent point-in-time view of the whole file for a
// backup archive (see package archive), and CheckStateFile checks such a
// file offline, down to its indexes.
//
// After each committed batch the FSM tells its Notifier which tasks entered
// or left the due index, so the leader's scheduler can keep its timing wheel
// in step without rescanning.
package fsm
