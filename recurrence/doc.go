// Package recurrence computes when a recurring schedule runs: a cron
// expression read in an IANA time zone, or a fixed interval, between an
// optional start and end.
//
// Cron expressions are parsed by github.com/robfig/cron/v3 (five fields,
// an optional sixth for seconds in front, and the @yearly, @monthly,
// @weekly, @daily, @midnight and @hourly macros); zones come from Go's
// time package, whose database the binary embeds (time/tzdata).
//
// Daylight saving follows Amazon EventBridge Scheduler's rule:
//
//   - A local time that does not exist (the clocks spring forward over
//     it) does not run that day: "30 2 * * *" in America/New_York skips
//     the second Sunday of March.
//   - A local time that happens twice (the clocks fall back over it) runs
//     once, at its first occurrence, the one before the change: "30 1 * *
//     *" in America/New_York runs at 01:30 EDT on the first Sunday of
//     November, not again at 01:30 EST.
//
// Both follow from one principle: a cron expression names wall-clock
// times, and each wall-clock time it names runs at most once. An hourly
// expression therefore runs 23 times on a spring-forward day and 24 (not
// 25) on a fall-back day. A fixed interval ("every") counts real time from
// its anchor and knows nothing of zones.
//
// Each occurrence has an id derived from the schedule's id and its time
// (OccurrenceID), and a jitter derived from the same (Jitter), so every
// node computes the same task for it.
package recurrence
