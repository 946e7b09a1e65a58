package cluster

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentMetadataChangesAllArrive changes this node's gossip
// metadata from many goroutines at once, as the placement follower, the
// formed-publisher and a leave do: every change must be in the metadata
// memberlist finally publishes (and, under -race, none may race).
func TestConcurrentMetadataChangesAllArrive(t *testing.T) {
	g, err := newGossip(Config{NodeID: "n1", GossipAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}, "127.0.0.1:1", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.list.Shutdown() })

	const writers = 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				// Each writer owns one character of State.
				change := func(m *nodeMeta) {
					s := []byte(m.State)
					for len(s) < writers {
						s = append(s, '0')
					}
					s[w] = byte('a' + i%26)
					m.State = string(s)
				}
				if err := g.publish(change); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	want := strings.Repeat("t", writers) // each writer's last change, i = 19
	var published nodeMeta
	if err := json.Unmarshal(g.list.LocalNode().Meta, &published); err != nil {
		t.Fatal(err)
	}
	if published.State != want {
		t.Fatalf("published state %q, want %q (a concurrent change was lost)", published.State, want)
	}
}
