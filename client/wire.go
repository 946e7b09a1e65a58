package client

import (
	"net/http"
	"time"

	"github.com/hourglass-scheduler/hourglass/wire"
)

// The wire contract (package wire), under the names this SDK has always
// used for it.
type (
	AckItem           = wire.AckItem
	AckRequest        = wire.AckRequest
	AckResult         = wire.AckResult
	AcksRequest       = wire.AcksRequest
	AcksResponse      = wire.AcksResponse
	Backoff           = wire.Backoff
	BatchRequest      = wire.BatchRequest
	BatchResponse     = wire.BatchResponse
	BatchResult       = wire.BatchResult
	BulkRequest       = wire.BulkRequest
	BulkResponse      = wire.BulkResponse
	ClusterInfo       = wire.ClusterInfo
	ClusterLeader     = wire.ClusterLeader
	ClusterNode       = wire.ClusterNode
	ClusterGroup      = wire.ClusterGroup
	SnapshotGroup     = wire.SnapshotGroup
	GroupReplica      = wire.GroupReplica
	CreateTaskRequest = wire.CreateTaskRequest
	DueBucket         = wire.DueBucket
	DueStats          = wire.DueStats
	ErrorBody         = wire.ErrorBody
	ErrorResponse     = wire.ErrorResponse
	ExtendRequest     = wire.ExtendRequest
	LeaseRequest      = wire.LeaseRequest
	LeaseResponse     = wire.LeaseResponse
	LeasedTask        = wire.LeasedTask
	ListResponse      = wire.ListResponse
	NackRequest       = wire.NackRequest
	Queue             = wire.Queue
	QueueList         = wire.QueueList
	QueueSettings     = wire.QueueSettings
	RateLimit         = wire.RateLimit
	RedriveRequest    = wire.RedriveRequest
	RedriveResponse   = wire.RedriveResponse
	RestoreResponse   = wire.RestoreResponse
	RetryPolicy       = wire.RetryPolicy
	Schedule          = wire.Schedule
	ScheduleList      = wire.ScheduleList
	ScheduleRequest   = wire.ScheduleRequest
	Occurrence        = wire.Occurrence
	TaskTemplate      = wire.TaskTemplate
	SignedDelivery    = wire.SignedDelivery
	Snapshot          = wire.Snapshot
	Target            = wire.Target
	Task              = wire.Task
	UpdateTaskRequest = wire.UpdateTaskRequest
)

const (
	CodeConflict           = wire.CodeConflict
	CodeFailedPrecondition = wire.CodeFailedPrecondition
	CodeInternal           = wire.CodeInternal
	CodeInvalidArgument    = wire.CodeInvalidArgument
	CodeNotFound           = wire.CodeNotFound
	CodePayloadTooLarge    = wire.CodePayloadTooLarge
	CodePermissionDenied   = wire.CodePermissionDenied
	CodeResourceExhausted  = wire.CodeResourceExhausted
	CodeUnauthenticated    = wire.CodeUnauthenticated
	CodeUnavailable        = wire.CodeUnavailable
	HeaderAttempt          = wire.HeaderAttempt
	HeaderFencingToken     = wire.HeaderFencingToken
	HeaderScheduledAt      = wire.HeaderScheduledAt
	HeaderSignature        = wire.HeaderSignature
	HeaderTaskID           = wire.HeaderTaskID
	HeaderTimestamp        = wire.HeaderTimestamp
	NoBound                = wire.NoBound
	SigningKeyPrefix       = wire.SigningKeyPrefix
)

var (
	ErrBadSignature = wire.ErrBadSignature
)

// ParseSigningKey reads a signing key's text form ("whsec_" + base64).
func ParseSigningKey(s string) ([]byte, error) { return wire.ParseSigningKey(s) }

// SignWebhook is a delivery's v2 signature with key (wire.SignWebhook).
func SignWebhook(key []byte, d SignedDelivery) string { return wire.SignWebhook(key, d) }

// SignWebhookV1 is a delivery's v1 signature (deprecated; wire.SignWebhookV1).
func SignWebhookV1(key []byte, id string, timestamp int64, body []byte) string {
	return wire.SignWebhookV1(key, id, timestamp, body)
}

// VerifyWebhook checks a delivery's v2 signature against keys, and that
// its timestamp is within tolerance of now (wire.VerifyWebhook).
func VerifyWebhook(keys [][]byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	return wire.VerifyWebhook(keys, h, body, tolerance, now)
}

// VerifyWebhookV1 checks a v1 signature (wire.VerifyWebhookV1).
//
// Deprecated: use VerifyWebhook; servers send both signatures for a release.
func VerifyWebhookV1(keys [][]byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	return wire.VerifyWebhookV1(keys, h, body, tolerance, now)
}
