package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRaftAndGossipLogThroughSlog: with a JSON handler, every line a node
// writes is JSON, raft's own lines included, at their own levels and with
// hclog's formatted values rendered.
func TestRaftAndGossipLogThroughSlog(t *testing.T) {
	var out logBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := Open(Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line that is not JSON: %q", line)
		}
		if rec["level"] == "DEBUG" {
			t.Errorf("a debug line at info level: %q", line)
		}
		if rec["component"] == "raft" {
			seen[rec["msg"].(string)] = true
			if servers, ok := rec["servers"]; ok {
				if s, ok := servers.(string); !ok || strings.Contains(s, "%") {
					t.Errorf("hclog.Fmt value not rendered: %q", line)
				}
			}
		}
	}
	for _, msg := range []string{"initial configuration", "entering leader state"} {
		if !seen[msg] {
			t.Errorf("raft's %q is not in the node's log:\n%s", msg, out.String())
		}
	}
	if strings.Contains(out.String(), "waiting to be added") {
		t.Errorf("a single node that bootstrapped itself says it waits to be added:\n%s", out.String())
	}
}

func TestStdLogBridgeLevels(t *testing.T) {
	var out logBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newStdLog(logger, "memberlist")
	l.Print("[DEBUG] memberlist: Stream connection from=127.0.0.1:4000")
	l.Print("[WARN] memberlist: Refuting a suspect message")
	l.Print("[ERR] memberlist: Failed to send ping")
	l.Print("no tag at all")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec struct{ Level, Msg, Component string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		got = append(got, rec.Level+" "+rec.Component+" "+rec.Msg)
	}
	want := []string{
		"DEBUG memberlist Stream connection from=127.0.0.1:4000",
		"WARN memberlist Refuting a suspect message",
		"ERROR memberlist Failed to send ping",
		"INFO memberlist no tag at all",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
