package client

import (
	"encoding/json"
	"time"
)

// CreateTaskRequest is the body of POST /v1/tasks. Exactly one of
// ExecuteAt (RFC 3339) and Delay (a Go duration such as "90s") is set.
type CreateTaskRequest struct {
	ID          string          `json:"id,omitempty"`
	Queue       string          `json:"queue,omitempty"`
	Name        string          `json:"name,omitempty"`
	ExecuteAt   string          `json:"execute_at,omitempty"`
	Delay       string          `json:"delay,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	Target      *Target         `json:"target,omitempty"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
	Backoff     *Backoff        `json:"backoff,omitempty"`
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
	ID          string          `json:"id"`
	Queue       string          `json:"queue"`
	Name        string          `json:"name,omitempty"`
	ExecuteAt   time.Time       `json:"execute_at"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	Target      *Target         `json:"target,omitempty"`
	MaxAttempts int             `json:"max_attempts"`
	Backoff     *Backoff        `json:"backoff,omitempty"`

	// State is scheduled, running, succeeded, dead or cancelled.
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// NextAttemptAt is set while a failed task waits for its retry.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	FiredAt       *time.Time `json:"fired_at,omitempty"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	// Version changes with every change to the task (If-Match on PATCH).
	Version uint64 `json:"version"`
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
	CodePayloadTooLarge    = "payload_too_large"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

// ClusterInfo is GET /v1/cluster: this node's view of the cluster.
type ClusterInfo struct {
	Leader       *ClusterLeader `json:"leader"`
	Nodes        []ClusterNode  `json:"nodes"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
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
}

// RestoreResponse is the answer to POST /v1/snapshot: the backup the
// cluster now holds.
type RestoreResponse struct {
	Restored Snapshot `json:"restored"`
}
