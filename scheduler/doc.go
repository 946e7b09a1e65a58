// Package scheduler does the leader's duties: it keeps a timing wheel
// filled with the tasks falling due soon, fires them with the
// commit-before-send protocol, delivers them over HTTP, and records the
// outcomes. It runs only while its node is the raft leader (Run is the
// cluster's LeaderFunc), and it reads the state machine but changes it
// only by proposing commands.
//
// The pipeline, one goroutine per stage unless said otherwise:
//
//	loader+wheel ─► firer ─► pacer ─► dispatcher ─► workers (N) ─► recorder
//	  │ scans the fsm's due index up to now+horizon into the wheel, and
//	  │ hears of creates, reschedules and cancels inside the loaded
//	  │ range through the fsm's Notifier; releases each task a short
//	  │ lead before it is due.
//	firer:   proposes one Fire command for whatever was released (the
//	         fsm accepts only tasks still scheduled at that due time).
//	pacer:   holds accepted tasks until their due time, never sends early.
//	dispatcher: lets deliveries go as the send gates allow (per host, per
//	         queue, Retry-After, no more than there are workers).
//	workers: POST the payload with the Hourglass-* headers, each attempt
//	         under the task's timeout.
//	recorder: proposes outcomes in batches: succeeded, retry at T
//	         (exponential backoff, full jitter) or dead.
//
// Memory is bounded by what falls due within the horizon (and a cap on
// loaded entries), not by the number of pending tasks. Tasks found overdue
// when leadership starts (downtime, failover, restore) are loaded in due
// order at a bounded rate. Tasks left running by an earlier term are fired
// again as their next attempt.
package scheduler
