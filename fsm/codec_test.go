package fsm

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// TestVTCodecMatchesProto: the generated reflection-free codec the state
// machine uses reads what proto.Marshal writes and writes what
// proto.Unmarshal reads, for a task with every field set.
func TestVTCodecMatchesProto(t *testing.T) {
	task := &fsmpb.Task{
		Id: "01J-task", Queue: "emails", Name: "welcome", ExecuteAt: -5, Payload: []byte{0, 1, 2, 0xff},
		Target:      &fsmpb.Target{Url: "https://example.com/hook?x=1", Method: "PUT", Headers: map[string]string{"X-A": "1", "X-B": "ü"}},
		MaxAttempts: 7, Backoff: &fsmpb.Backoff{Initial: 1, Max: 2, Multiplier: 2.5},
		State: fsmpb.State_RUNNING, Attempts: 3, LastError: "boom", CreatedAt: 1, UpdatedAt: 2, FiredAt: 3, CompletedAt: 4,
		Version: 1 << 40, DueAt: 1 << 62, FireTerm: 9, FireIndex: 10, Fingerprint: make([]byte, 32),
		RetainUntil: 11, LeaseExpiresAt: 12, MaxLateness: 13, Result: "ok", LeaseToken: []byte("secret"),
	}
	vt, err := task.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	var viaProto fsmpb.Task
	if err := proto.Unmarshal(vt, &viaProto); err != nil || !proto.Equal(&viaProto, task) {
		t.Fatalf("proto.Unmarshal of MarshalVT: %v, equal %v", err, proto.Equal(&viaProto, task))
	}
	pb, err := proto.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	var viaVT fsmpb.Task
	if err := viaVT.UnmarshalVT(pb); err != nil || !proto.Equal(&viaVT, task) {
		t.Fatalf("UnmarshalVT of proto.Marshal: %v, equal %v", err, proto.Equal(&viaVT, task))
	}
	if len(vt) != len(pb) {
		t.Fatalf("MarshalVT wrote %d bytes, proto.Marshal %d", len(vt), len(pb))
	}
}
