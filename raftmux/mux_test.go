package raftmux

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func newMux(t *testing.T) *Mux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(ln, nil, TCPDialer)
	t.Cleanup(func() { m.Close() })
	return m
}

func layer(t *testing.T, m *Mux, group uint32) *Layer {
	t.Helper()
	l, err := m.Layer(group)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// accept waits (up to a deadline) for the layer's next connection.
func accept(t *testing.T, l *Layer) net.Conn {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			got <- c
		}
	}()
	select {
	case c := <-got:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("group %d accepted nothing", l.group)
		return nil
	}
}

// closedByPeer reports whether conn is closed by the other side within a
// deadline (a read returns EOF or a reset, not a timeout).
func closedByPeer(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestRoutesEachConnectionToItsGroup: two groups share one listener; what
// each dials arrives at its own group only, with its bytes intact.
func TestRoutesEachConnectionToItsGroup(t *testing.T) {
	a, b := newMux(t), newMux(t)
	a1, a2 := layer(t, a, 1), layer(t, a, 2)
	b1, b2 := layer(t, b, 1), layer(t, b, 2)
	for _, c := range []struct {
		from, to *Layer
		msg      string
	}{{a1, b1, "for group one"}, {a2, b2, "for group two"}, {b2, a2, "back on two"}} {
		conn, err := c.from.Dial(raft.ServerAddress(c.to.Addr().String()), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, c.msg); err != nil {
			t.Fatal(err)
		}
		in := accept(t, c.to)
		buf := make([]byte, len(c.msg))
		if _, err := io.ReadFull(in, buf); err != nil || string(buf) != c.msg {
			t.Fatalf("group %d read %q, %v; want %q", c.to.group, buf, err, c.msg)
		}
	}
	select {
	case c := <-b2.conns:
		t.Fatalf("group 2 got a connection meant for another group: %v", c.RemoteAddr())
	default:
	}
}

// TestRefusesWhatIsNotForAHostedGroup: a connection for a group this node
// does not host, one with a wrong header, and one that says nothing are
// each closed (the last after the header timeout), and a closed layer
// takes nothing more.
func TestRefusesWhatIsNotForAHostedGroup(t *testing.T) {
	m := newMux(t)
	m.mu.Lock()
	m.headerTimeout = 100 * time.Millisecond // a silent client is cut off soon
	m.mu.Unlock()
	l := layer(t, m, 1)
	raw := func(header []byte) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", m.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if len(header) > 0 {
			conn.Write(header)
		}
		return conn
	}
	for name, header := range map[string][]byte{
		"another group": {magic, 0, 0, 0, 9},
		"wrong magic":   {'G', 0, 0, 0, 1},
		"silent":        nil,
		"half a header": {magic, 0},
	} {
		if !closedByPeer(raw(header)) {
			t.Errorf("%s: the connection was kept open", name)
		}
	}
	if _, err := m.Layer(1); err == nil {
		t.Fatal("a second layer for group 1 was allowed")
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if !closedByPeer(raw([]byte{magic, 0, 0, 0, 1})) {
		t.Error("a closed group's connection was kept open")
	}
	if _, err := m.Layer(1); err != nil {
		t.Fatalf("the group cannot have a layer again after Close: %v", err)
	}
}

// TestRaftTransportsShareOnePort: hashicorp/raft's network transports of
// two groups, on one port per node, each get their own group's RPCs.
func TestRaftTransportsShareOnePort(t *testing.T) {
	a, b := newMux(t), newMux(t)
	transport := func(m *Mux, group uint32) *raft.NetworkTransport {
		tr := raft.NewNetworkTransport(layer(t, m, group), 2, time.Second, io.Discard)
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	a1, b1, b2 := transport(a, 1), transport(b, 1), transport(b, 2)
	_ = transport(a, 2)
	go func() {
		for rpc := range b1.Consumer() {
			req := rpc.Command.(*raft.RequestVoteRequest)
			rpc.Respond(&raft.RequestVoteResponse{Term: req.Term + 1, Granted: true}, nil)
		}
	}()
	var resp raft.RequestVoteResponse
	req := &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("a"), Addr: []byte(a1.LocalAddr())}, Term: 7}
	if err := a1.RequestVote("b", b1.LocalAddr(), req, &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Granted || resp.Term != 8 {
		t.Fatalf("group 1's vote answer %+v", resp)
	}
	select {
	case rpc := <-b2.Consumer():
		t.Fatalf("group 2 got group 1's RPC %T", rpc.Command)
	default:
	}
	if a1.LocalAddr() != raft.ServerAddress(a.ln.Addr().String()) {
		t.Fatalf("a group's address %s is not its node's one port %s", a1.LocalAddr(), a.ln.Addr())
	}
}
