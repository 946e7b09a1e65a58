package wire

import (
	"encoding/json"
	"time"
)

// CreateTaskRequest is the body of POST /v1/tasks. Exactly one of
// ExecuteAt (RFC 3339) and Delay (a Go duration such as "90s") is set.
type CreateTaskRequest struct {
	ID        string          `json:"id,omitempty"`
	Queue     string          `json:"queue,omitempty"`
	Name      string          `json:"name,omitempty"`
	ExecuteAt string          `json:"execute_at,omitempty"`
	Delay     string          `json:"delay,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	// Target is the webhook to deliver to; without one the task is
	// leased by pull workers of its queue (LeaseTasks, Worker).
	Target *Target `json:"target,omitempty"`
	// MaxAttempts defaults to the queue's (5 unless the queue says).
	MaxAttempts int      `json:"max_attempts,omitempty"`
	Backoff     *Backoff `json:"backoff,omitempty"`
	// MaxLateness (a Go duration): no attempt starts later than this
	// after ExecuteAt; a task that could not is not delivered and ends
	// expired (after downtime, say). Empty: no limit.
	MaxLateness string `json:"max_lateness,omitempty"`
}

// Target is where a task is delivered: an HTTP request to URL.
type Target struct {
	URL     string            `json:"url"`
	Method  string            `json:"method,omitempty"`  // default POST
	Headers map[string]string `json:"headers,omitempty"` // sent with the payload
	Timeout string            `json:"timeout,omitempty"` // per attempt, default "10s"
}

// Backoff shapes the delay between attempts: exponential from Initial by
// Multiplier, capped at Max, with full jitter.
type Backoff struct {
	Initial    string  `json:"initial,omitempty"`
	Max        string  `json:"max,omitempty"`
	Multiplier float64 `json:"multiplier,omitempty"`
}

// UpdateTaskRequest is the body of PATCH /v1/tasks/{id}: what to change in
// a scheduled task. Absent fields stay as they are.
type UpdateTaskRequest struct {
	ExecuteAt string          `json:"execute_at,omitempty"`
	Delay     string          `json:"delay,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Target    *Target         `json:"target,omitempty"`
}

// Task is a task as the API returns it.
type Task struct {
	ID        string          `json:"id"`
	Queue     string          `json:"queue"`
	Name      string          `json:"name,omitempty"`
	ExecuteAt time.Time       `json:"execute_at"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Target    *Target         `json:"target,omitempty"`
	// MaxAttempts is 0 when the task follows its queue's setting.
	MaxAttempts int      `json:"max_attempts,omitempty"`
	Backoff     *Backoff `json:"backoff,omitempty"`
	MaxLateness string   `json:"max_lateness,omitempty"`

	// State is scheduled, running, succeeded, dead, cancelled or expired.
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// Result is what the worker that acknowledged the task said.
	Result string `json:"result,omitempty"`
	// LeaseExpiresAt is set while the task is leased to a pull worker.
	LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
	// NextAttemptAt is set while a failed task waits for its retry.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	FiredAt       *time.Time `json:"fired_at,omitempty"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	// Version changes with every change to the task (If-Match on PATCH).
	Version uint64 `json:"version"`
}

// RateLimit is a token bucket: PerSecond dispatches per second on
// average, up to Burst at once.
type RateLimit struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst,omitempty"` // default: a tenth of PerSecond, at least 1
}

// QueueSettings is the body of PUT /v1/queues/{name}: every setting of
// a queue (absent ones take their defaults).
type QueueSettings struct {
	// MaxAttempts, MinBackoff and MaxBackoff are the retry policy of the
	// queue's tasks that set none themselves (defaults 5, "1s", "5m").
	MaxAttempts int    `json:"max_attempts,omitempty"`
	MinBackoff  string `json:"min_backoff,omitempty"`
	MaxBackoff  string `json:"max_backoff,omitempty"`
	// MaxRetryDuration ends retrying this long after a task's execute_at:
	// a failure after it is final (dead). Empty: no limit.
	MaxRetryDuration string     `json:"max_retry_duration,omitempty"`
	RateLimit        *RateLimit `json:"rate_limit,omitempty"`
	// MaxConcurrent caps the queue's deliveries and leases in flight.
	MaxConcurrent int  `json:"max_concurrent,omitempty"`
	Paused        bool `json:"paused,omitempty"`
}

// Queue is a queue as the API returns it.
type Queue struct {
	Name string `json:"name"`
	QueueSettings
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Tasks counts the queue's tasks by state.
	Tasks map[string]uint64 `json:"tasks"`
	// Effective is the retry policy in force for the queue's tasks that
	// set none themselves: the queue's settings, else the server's
	// defaults.
	Effective RetryPolicy `json:"effective"`
}

// RetryPolicy is a queue's retry policy in force.
type RetryPolicy struct {
	MaxAttempts int    `json:"max_attempts"`
	MinBackoff  string `json:"min_backoff"`
	MaxBackoff  string `json:"max_backoff"`
}

// QueueList is GET /v1/queues.
type QueueList struct {
	Queues []Queue `json:"queues"`
	// NextPageToken, when set, gets the next page (?page_token=).
	NextPageToken string `json:"next_page_token,omitempty"`
}

// LeaseRequest is the body of POST /v1/queues/{name}/lease.
type LeaseRequest struct {
	Max   int    `json:"max,omitempty"`   // tasks, default 1
	Wait  string `json:"wait,omitempty"`  // long-poll up to this, default "0s"
	Lease string `json:"lease,omitempty"` // default "30s"
}

// LeasedTask is a task leased to a worker: it must ack, nack or extend
// the lease before LeaseExpiresAt, showing its LeaseToken.
type LeasedTask struct {
	Task
	Attempt int `json:"attempt"`
	// LeaseToken is this lease's secret: ack, nack and extend need it,
	// so only the worker the lease went to can finish or extend it.
	LeaseToken string `json:"lease_token"`
}

// LeaseResponse answers a lease request: no tasks when none fell due
// within the wait.
type LeaseResponse struct {
	Tasks []LeasedTask `json:"tasks"`
}

// AckRequest is the body of POST /v1/tasks/{id}/ack. Attempt is
// optional: when given, it must be the lease's too.
type AckRequest struct {
	LeaseToken string `json:"lease_token"`
	Attempt    int    `json:"attempt,omitempty"`
	Result     string `json:"result,omitempty"`
}

// AckItem is one acknowledgement in POST /v1/tasks/ack.
type AckItem struct {
	ID         string `json:"id"`
	LeaseToken string `json:"lease_token"`
	Attempt    int    `json:"attempt,omitempty"`
	Result     string `json:"result,omitempty"`
}

// AcksRequest is the body of POST /v1/tasks/ack: up to 1,000 acks, one
// raft entry.
type AcksRequest struct {
	Acks []AckItem `json:"acks"`
}

// AcksResponse answers AcksRequest, one result per ack in order: empty
// when it applied, else the error (a stale attempt is a conflict).
type AcksResponse struct {
	Results []AckResult `json:"results"`
}

// AckResult is one ack's result.
type AckResult struct {
	Error *ErrorBody `json:"error,omitempty"`
}

// NackRequest is the body of POST /v1/tasks/{id}/nack. The task is retried
// after RetryIn if given, else after its backoff; or it is dead when its
// attempts are used up.
type NackRequest struct {
	LeaseToken string `json:"lease_token"`
	Attempt    int    `json:"attempt,omitempty"`
	Error      string `json:"error,omitempty"`
	RetryIn    string `json:"retry_in,omitempty"`
}

// ExtendRequest is the body of POST /v1/tasks/{id}/extend: the lease now
// ends Lease from now.
type ExtendRequest struct {
	LeaseToken string `json:"lease_token"`
	Attempt    int    `json:"attempt,omitempty"`
	Lease      string `json:"lease"`
}

// RedriveRequest is the body of POST /v1/queues/{name}/redrive: the dead
// task ID, or (empty) every dead task of the queue.
type RedriveRequest struct {
	ID string `json:"id,omitempty"`
}

// RedriveResponse counts the tasks moved back to scheduled.
type RedriveResponse struct {
	Redriven int `json:"redriven"`
}

// BulkRequest selects the scheduled tasks of a queue for POST
// /v1/queues/{name}/cancel or /shift: all of them, or those with Name,
// and whose next attempt is due in [From, To) (RFC 3339; either may be
// empty). DryRun only counts them. By (shift only) is a Go duration,
// negative to move tasks earlier.
type BulkRequest struct {
	Name   string `json:"name,omitempty"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	By     string `json:"by,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// BulkResponse counts the tasks selected and those changed (none on a
// dry run; fewer than selected when some changed state meanwhile).
type BulkResponse struct {
	Matched int  `json:"matched"`
	Changed int  `json:"changed"`
	DryRun  bool `json:"dry_run,omitempty"`
}

// BatchRequest is the body of POST /v1/tasks/batch.
type BatchRequest struct {
	Tasks []CreateTaskRequest `json:"tasks"`
}

// BatchResponse answers a batch: one result per task, in request order.
type BatchResponse struct {
	Results []BatchResult `json:"results"`
}

// BatchResult is a created (or already existing) task, or an error.
type BatchResult struct {
	Task  *Task      `json:"task,omitempty"`
	Error *ErrorBody `json:"error,omitempty"`
}

// ListResponse is a page of GET /v1/tasks.
type ListResponse struct {
	Tasks         []Task `json:"tasks"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// ErrorBody is the API's error shape.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorResponse wraps ErrorBody as the whole response body.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// Error codes.
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeNotFound           = "not_found"
	CodeConflict           = "conflict"
	CodeFailedPrecondition = "failed_precondition"
	CodeUnauthenticated    = "unauthenticated"
	CodePermissionDenied   = "permission_denied"
	CodePayloadTooLarge    = "payload_too_large"
	CodeResourceExhausted  = "resource_exhausted" // 429: too many requests at once
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

// ClusterInfo is GET /v1/cluster: this node's view of the cluster. The
// leader and indexes at its top are group 1's (a cluster of one group has
// no other); Groups lists every group.
type ClusterInfo struct {
	Leader       *ClusterLeader `json:"leader"`
	Nodes        []ClusterNode  `json:"nodes"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Groups       []ClusterGroup `json:"groups"`
}

// ClusterGroup is one raft group as this node's replica of it sees it
// (Local), or as gossip tells it when this node holds none: then Replicas
// are where the placement puts it, and the task count, term and indexes
// are 0. Lag is how many committed entries the replica has not applied
// yet.
type ClusterGroup struct {
	ID           uint32         `json:"id"`
	Local        bool           `json:"local"`
	Leader       *ClusterLeader `json:"leader"`
	Replicas     []GroupReplica `json:"replicas"`
	Slots        int            `json:"slots"`
	Tasks        uint64         `json:"tasks"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Lag          uint64         `json:"lag"`
}

// GroupReplica is one member of a group's raft configuration: State is
// leader, follower or nonvoter; or, seen from a node without a replica of
// the group, one node the placement puts it on: leader, follower,
// catching-up, or absent (no replica there yet).
type GroupReplica struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Alive bool   `json:"alive"`
}

// ClusterLeader names the leader, when one is known.
type ClusterLeader struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
}

// ClusterNode is one member. State is leader, follower or nonvoter for a
// member of the raft configuration, and "joining" for one only gossip knows.
type ClusterNode struct {
	ID         string `json:"id"`
	HTTPAddr   string `json:"http_addr,omitempty"`
	RaftAddr   string `json:"raft_addr,omitempty"`
	GossipAddr string `json:"gossip_addr,omitempty"`
	State      string `json:"state"`
	Voter      bool   `json:"voter"`
	Alive      bool   `json:"alive"`
}

// Snapshot describes a backup archive (GET /v1/snapshot): the state of
// the cluster after the raft entry at Index was applied.
type Snapshot struct {
	Index            uint64            `json:"index"`
	Term             uint64            `json:"term"`
	CreatedAt        time.Time         `json:"created_at"`
	NodeID           string            `json:"node_id"`
	HourglassVersion string            `json:"hourglass_version"`
	Tasks            map[string]uint64 `json:"tasks"` // by state
	TotalTasks       uint64            `json:"total_tasks"`
	Schedules        uint64            `json:"schedules"`
	// Groups lists each group's part of a backup of a cluster of many
	// groups (index and term above are then zero: each group has its
	// own).
	Groups []SnapshotGroup `json:"groups,omitempty"`
}

// SnapshotGroup is one group's part of a backup.
type SnapshotGroup struct {
	ID         uint32 `json:"id"`
	Index      uint64 `json:"index"`
	Term       uint64 `json:"term"`
	TotalTasks uint64 `json:"total_tasks"`
	Schedules  uint64 `json:"schedules"`
}

// RestoreResponse is the answer to POST /v1/snapshot: the backup the
// cluster now holds.
type RestoreResponse struct {
	Restored Snapshot `json:"restored"`
}

// DueStats is GET /v1/stats/due: how many scheduled tasks fall due in
// each step of a time range (their next attempt), to see a thundering
// herd coming.
type DueStats struct {
	From    time.Time   `json:"from"`
	To      time.Time   `json:"to"`
	Step    string      `json:"step"`
	Total   uint64      `json:"total"`
	Buckets []DueBucket `json:"buckets"`
}

// DueBucket is one step of DueStats.
type DueBucket struct {
	Start time.Time `json:"start"`
	Count uint64    `json:"count"`
}
