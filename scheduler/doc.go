// Package scheduler is the shell around a group leader's core (package
// leader): the goroutines, timers and I/O that carry out what the core
// decides. It runs only while its node leads (Run is the cluster's
// LeaderFunc), reads the state machine, and changes it only through the
// typed write path (package service).
//
// The pipeline, one goroutine per stage unless said otherwise:
//
//	loop ─► firer ─► pacer ─► dispatcher ─► workers (N) ─► recorder
//	loop:    runs the leader core: feeds it the state machine's changes
//	         (fsm.Notifier), failed fires and leases, Retry-After blocks,
//	         lease requests and the time; proposes nothing itself, but
//	         passes on what the core releases and sleeps until its Wake.
//	firer:   proposes one Fire entry for whatever was released (the fsm
//	         accepts only tasks still scheduled at that due time).
//	pacer:   holds accepted tasks until their due time, never sends early.
//	dispatcher: lets deliveries go as the send gates allow (per host, per
//	         queue, Retry-After, no more than there are workers).
//	workers: POST the payload with the Hourglass-* headers, each attempt
//	         under the task's timeout.
//	recorder: proposes outcomes in batches: succeeded, or failed (the fsm
//	         decides between a retry and dead).
//
// Pull workers' lease requests wait in the core; the answer's lease is
// proposed by the requester's goroutine (Lease), which then waits for the
// tasks' due time. Lease ends, ack, nack and extend go through the same
// write path.
package scheduler
