// Package leader is a group leader's duties as a pure state machine: which
// task to fire when, under which gates, when to send what was fired, and
// which pull worker gets what. Core owns the timing wheel, the load
// frontier over the state machine's due index, the queue and host gates
// (one state per host, for firing and sending alike, its Retry-After
// included), the reservations of tasks handed out, the fired deliveries
// waiting for their exact time and for the send gates, and the lease
// requests waiting. It has no goroutines, locks,
// channels or timers and never reads a clock: the shell around it
// (package scheduler) feeds it what happened (state changes, committed
// fires, deliveries that ended, failed proposals, lease requests) and the
// time, calls Advance, and carries out what Advance returns (Fire entries
// to propose, deliveries to send, lease ends to record, lease answers to
// give) before sleeping until its Wake. Its tests drive it through hours of simulated time in
// milliseconds.
//
// The one thing it reads is the state machine itself (Store: the due
// index, queue settings, running tasks), which only the shell's raft
// applies change, between calls.
package leader
