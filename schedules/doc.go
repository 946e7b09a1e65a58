// Package schedules turns a group's recurring schedules into tasks: on
// the group's leader, a loop creates each schedule's occurrences a few
// seconds ahead of their time, through raft, as ordinary tasks whose ids
// derive from the schedule and the occurrence's time (so an occurrence
// exists once, whatever fails). Which occurrences to create, after a
// pause or downtime too, is a pure function of the schedule and the time
// (Plan); the loop only reads, plans and proposes.
//
// The rule itself (cron or every, time zone, daylight saving) is package
// recurrence's; what the state machine does with occurrences (overlap)
// is package fsm's.
package schedules
