package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testCA is a cluster CA for tests, with a helper that issues member TLS
// configurations.
type testCA struct {
	t               *testing.T
	certPEM, keyPEM []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	certPEM, keyPEM, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, certPEM: certPEM, keyPEM: keyPEM}
}

// keyPair issues a certificate for 127.0.0.1.
func (ca *testCA) keyPair(name string) tls.Certificate {
	ca.t.Helper()
	certPEM, keyPEM, err := NewCert(ca.certPEM, ca.keyPEM, name, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		ca.t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		ca.t.Fatal(err)
	}
	return cert
}

// member is the TLS configuration of a member holding one of this CA's
// certificates.
func (ca *testCA) member(name string) *tls.Config {
	ca.t.Helper()
	cfg, err := MemberTLS(ca.certPEM, ca.keyPair(name))
	if err != nil {
		ca.t.Fatal(err)
	}
	return cfg
}

func gossipKey(t *testing.T) []byte {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) has(s ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range strings.Split(b.buf.String(), "\n") {
		all := true
		for _, part := range s {
			all = all && strings.Contains(line, part)
		}
		if all {
			return true
		}
	}
	return false
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// raftConfig is the leader's raft configuration and the index it was
// committed at.
func raftConfig(t *testing.T, n *Node) (uint64, []raft.Server) {
	t.Helper()
	f := n.Group(1).raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	return f.Index(), f.Configuration().Servers
}

// A node without the cluster's gossip key, or without a certificate of
// the cluster's CA, is kept out: the raft configuration does not change.
// One with both is let in, which shows the others were kept out by what
// they lacked.
func TestStrangersAreKeptOut(t *testing.T) {
	c := newTestCluster(t)
	c.replicas = 5 // every node in group 1
	ca, otherCA := newTestCA(t), newTestCA(t)
	key := gossipKey(t)
	logs := map[string]*logBuffer{}
	start := func(id string, cfg Config) *Node {
		logs[id] = &logBuffer{}
		cfg.Logger = logs[id].logger()
		cfg.Groups = 1
		return c.startWith(id, cfg)
	}
	seed := start("n1", Config{BootstrapExpect: 3, TLS: ca.member("n1"), GossipKeys: [][]byte{key}}).Status().GossipAddr
	start("n2", Config{BootstrapExpect: 3, Join: []string{seed}, TLS: ca.member("n2"), GossipKeys: [][]byte{key}})
	start("n3", Config{BootstrapExpect: 3, Join: []string{seed}, TLS: ca.member("n3"), GossipKeys: [][]byte{key}})
	leader := c.leader()
	c.waitFor(10*time.Second, "3 voters", func() bool { return c.voters(leader) == 3 })
	index, servers := raftConfig(t, leader)
	leaderLog := logs[leader.cfg.NodeID]

	unchanged := func(stranger string, inGossip bool) {
		t.Helper()
		i, s := raftConfig(t, leader)
		if i != index || !slices.Equal(s, servers) {
			t.Fatalf("after %s: raft configuration at index %d is %v, was %v at %d", stranger, i, s, servers, index)
		}
		if _, ok := leader.gossip.alive()[stranger]; ok != inGossip {
			t.Fatalf("%s in the leader's gossip: %v, want %v", stranger, ok, inGossip)
		}
	}

	// Without the gossip key, or with another, gossip refuses it.
	for _, s := range []struct {
		id   string
		keys [][]byte
	}{{"no-gossip-key", nil}, {"wrong-gossip-key", [][]byte{gossipKey(t)}}} {
		start(s.id, Config{Join: []string{seed}, TLS: ca.member(s.id), GossipKeys: s.keys})
		c.waitFor(15*time.Second, s.id+" failing to join", func() bool { return logs[s.id].has("could not join yet") })
		unchanged(s.id, false)
		c.stop(s.id)
	}

	// With the gossip key but without the cluster's certificate, the
	// leader will not add it.
	for _, s := range []struct {
		id  string
		tls *tls.Config
	}{{"tls-other-ca", otherCA.member("x")}, {"tls-none", nil}} {
		start(s.id, Config{Join: []string{seed}, TLS: s.tls, GossipKeys: [][]byte{key}})
		c.waitFor(15*time.Second, "the leader refusing "+s.id, func() bool {
			return leaderLog.has("failed the cluster's TLS check", "id="+s.id)
		})
		unchanged(s.id, true)
		c.stop(s.id)
	}

	// With both, it joins.
	start("n4", Config{Join: []string{seed}, TLS: ca.member("n4"), GossipKeys: [][]byte{key}})
	c.waitFor(15*time.Second, "n4 a voter", func() bool { return c.voters(c.leader()) == 4 })
}

// A member's raft listener refuses a client with no certificate or one of
// another CA, and a member refuses to dial a listener of another CA.
func TestRaftListenerRefusesStrangers(t *testing.T) {
	ca, otherCA := newTestCA(t), newTestCA(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	layer := tls.NewListener(tcp, ca.member("member")) // as Node.listen makes it
	defer layer.Close()
	go serveEcho(layer)
	addr := layer.Addr().String()
	dial := func(n *Node) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return n.dialTLS(ctx, addr)
	}

	// A member of the cluster gets through (the echo comes back).
	if err := echo(dial(&Node{tls: ca.member("peer")})); err != nil {
		t.Fatalf("a member could not talk to another: %v", err)
	}

	for name, cfg := range map[string]*tls.Config{
		"no certificate":         {InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
		"another CA certificate": {InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{otherCA.keyPair("x")}},
	} {
		if err := echo(tls.Dial("tcp", addr, cfg)); err == nil {
			t.Errorf("a client with %s got through", name)
		}
	}
	if _, err := dial(&Node{tls: otherCA.member("stranger")}); err == nil || !strings.Contains(err.Error(), "not the cluster's") {
		t.Errorf("dialling a listener of another CA: %v, want the certificate refused", err)
	}
}

// serveEcho accepts connections on l and echoes a byte on each whose
// handshake passed, until l is closed.
func serveEcho(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			buf := make([]byte, 1)
			if _, err := conn.Read(buf); err == nil {
				conn.Write(buf)
			}
		}()
	}
}

// echo sends a byte on conn and reads it back.
func echo(conn net.Conn, err error) error {
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte{7}); err != nil {
		return err
	}
	buf := make([]byte, 1)
	_, err = conn.Read(buf)
	return err
}

// Gossip keys rotate in three rolling steps (install the new key, make it
// primary, drop the old one): nodes one step apart understand each other,
// nodes on the old key alone and the new key alone do not.
func TestGossipKeyRotation(t *testing.T) {
	old, new := gossipKey(t), gossipKey(t)
	steps := [][][]byte{{old}, {old, new}, {new, old}, {new}}
	joins := func(a, b [][]byte) bool {
		t.Helper()
		first, err := newGossip(Config{NodeID: "a", GossipAddr: "127.0.0.1:0", GossipKeys: a}, "127.0.0.1:1", false, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer first.list.Shutdown()
		second, err := newGossip(Config{NodeID: "b", GossipAddr: "127.0.0.1:0", GossipKeys: b}, "127.0.0.1:2", false, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer second.list.Shutdown()
		addr := first.list.LocalNode().FullAddress().Addr
		_, err = second.list.Join([]string{addr})
		return err == nil
	}
	for i := 1; i < len(steps); i++ {
		if !joins(steps[i-1], steps[i]) || !joins(steps[i], steps[i-1]) {
			t.Errorf("step %d (%d keys) and step %d (%d keys) do not understand each other", i-1, len(steps[i-1]), i, len(steps[i]))
		}
	}
	if joins(steps[0], steps[3]) {
		t.Error("a node on the old key alone joined one on the new key alone")
	}
}

// While a cluster moves to a new CA, a --cluster-ca file holding both
// lets members with a certificate of either talk to each other.
func TestMemberTLSWithTwoCAs(t *testing.T) {
	oldCA, newCA := newTestCA(t), newTestCA(t)
	bundle := append(append([]byte{}, oldCA.certPEM...), newCA.certPEM...)
	member := func(ca *testCA, name string) *tls.Config {
		cfg, err := MemberTLS(bundle, ca.keyPair(name))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	listen := func(cfg *tls.Config) net.Listener {
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := tls.NewListener(tcp, cfg)
		t.Cleanup(func() { l.Close() })
		go serveEcho(l)
		return l
	}
	dial := func(cfg *tls.Config, l net.Listener) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return (&Node{tls: cfg}).dialTLS(ctx, l.Addr().String())
	}
	old := listen(member(oldCA, "old"))
	peer := listen(member(newCA, "new"))
	if err := echo(dial(member(newCA, "new"), old)); err != nil {
		t.Fatalf("members of the old and the new CA, both trusted: %v", err)
	}
	// Without the new CA in the file, the old member refuses the new one.
	if _, err := dial(oldCA.member("old-only"), peer); err == nil || !strings.Contains(err.Error(), "not the cluster's") {
		t.Fatalf("a member trusting only the old CA dialling one of the new: %v, want the certificate refused", err)
	}
}
