// Package scheduler is the shell around a group leader's core (package
// leader): the goroutines, timers and I/O that carry out what the core
// decides. It runs only while its node leads (Run is the cluster's
// LeaderFunc), reads the state machine, and changes it only through the
// typed write path (package service).
//
// The pipeline, one goroutine per stage unless said otherwise:
//
//	loop ─► firer ─► loop ─► workers (N) ─► recorder
//	loop:    runs the leader core: feeds it the state machine's changes
//	         (fsm.Notifier), the tasks each committed Fire accepted, the
//	         deliveries that ended (with a host's Retry-After), failed
//	         fires and leases, lease requests and the time; passes on what
//	         the core releases (fires, deliveries whose time came and
//	         whose gates let them go, lease ends, lease answers) and
//	         sleeps until its Wake.
//	firer:   proposes one Fire entry for whatever was released (the fsm
//	         accepts only tasks still scheduled at that due time), and
//	         hands the loop the accepted tasks, in release order.
//	workers: POST the payload with the Hourglass-* headers (webhook), each
//	         attempt under the task's timeout; the core never hands out
//	         more deliveries than there are workers.
//	recorder: proposes outcomes in batches: succeeded, or failed (the fsm
//	         decides between a retry and dead).
//
// Pull workers' lease requests wait in the core; the answer's lease is
// proposed by the requester's goroutine (Lease), which then waits for the
// tasks' due time. Lease ends, ack, nack and extend go through the same
// write path.
package scheduler
