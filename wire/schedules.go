package wire

import (
	"encoding/json"
	"time"
)

// ScheduleRequest is the body of POST /v1/schedules, and of PATCH
// /v1/schedules/{id} (where absent fields stay as they are). Exactly one
// of Cron and Every is set.
type ScheduleRequest struct {
	ID string `json:"id,omitempty"`
	// Cron is five fields (minute hour day-of-month month day-of-week),
	// or six with seconds first, or a macro (@hourly, @daily, @weekly,
	// @monthly, @yearly), read in TimeZone.
	Cron string `json:"cron,omitempty"`
	// Every is a fixed interval, a Go duration of whole seconds, at
	// least "1s": the first run one interval after the schedule is
	// created (or at StartAt).
	Every string `json:"every,omitempty"`
	// TimeZone is an IANA name (Europe/Berlin); default UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// StartAt and EndAt (exclusive) bound the runs: RFC 3339 times, or
	// NoBound for none (in a PATCH: the bound is removed).
	StartAt string `json:"start_at,omitempty"`
	EndAt   string `json:"end_at,omitempty"`
	// Jitter delays each occurrence by up to this (a Go duration), by an
	// amount derived from the occurrence, the same on every node.
	Jitter string `json:"jitter,omitempty"`
	Paused *bool  `json:"paused,omitempty"`
	// Overlap: allow (default), skip or wait, when an occurrence falls
	// due while the previous one has not ended.
	Overlap string `json:"overlap,omitempty"`
	// CatchUp: all (default) or latest, of the occurrences missed while
	// the cluster was down; CatchUpWindow (default "24h") bounds how late
	// one may still run.
	CatchUp       string `json:"catch_up,omitempty"`
	CatchUpWindow string `json:"catch_up_window,omitempty"`
	// Task is the template of every occurrence: what a task create
	// takes, without id, execute_at and delay.
	Task *TaskTemplate `json:"task,omitempty"`
}

// NoBound, as a ScheduleRequest's StartAt or EndAt, is no bound: a PATCH
// with it removes the bound set before.
const NoBound = "none"

// TaskTemplate is what each occurrence of a schedule is made of.
type TaskTemplate struct {
	Queue       string          `json:"queue,omitempty"`
	Name        string          `json:"name,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	Target      *Target         `json:"target,omitempty"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
	Backoff     *Backoff        `json:"backoff,omitempty"`
	MaxLateness string          `json:"max_lateness,omitempty"`
}

// Schedule is a schedule as the API returns it.
type Schedule struct {
	ID            string       `json:"id"`
	Cron          string       `json:"cron,omitempty"`
	Every         string       `json:"every,omitempty"`
	TimeZone      string       `json:"time_zone"`
	StartAt       *time.Time   `json:"start_at,omitempty"`
	EndAt         *time.Time   `json:"end_at,omitempty"`
	Jitter        string       `json:"jitter,omitempty"`
	Paused        bool         `json:"paused"`
	Overlap       string       `json:"overlap"`
	CatchUp       string       `json:"catch_up"`
	CatchUpWindow string       `json:"catch_up_window"`
	Task          TaskTemplate `json:"task"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
	// Version changes with every change a client makes (If-Match on
	// PATCH).
	Version uint64 `json:"version"`
	// NextRuns are the next five run times, in the schedule's zone (none
	// while paused).
	NextRuns []time.Time `json:"next_runs"`
	// Occurrences counts the occurrences created, Missed those passed
	// over after downtime by the catch-up policy.
	Occurrences uint64 `json:"occurrences"`
	Missed      uint64 `json:"missed"`
	// Recent are the latest occurrences still kept (finished ones go
	// when their retention ends), the latest first: only in GET of one
	// schedule.
	Recent []Occurrence `json:"recent,omitempty"`
}

// Occurrence is one run of a schedule: the task made for it.
type Occurrence struct {
	TaskID    string    `json:"task_id"`
	ExecuteAt time.Time `json:"execute_at"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
}

// ScheduleList is GET /v1/schedules.
type ScheduleList struct {
	Schedules []Schedule `json:"schedules"`
	// NextPageToken, when set, gets the next page (?page_token=).
	NextPageToken string `json:"next_page_token,omitempty"`
}
