package raftmux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// magic starts every connection's header ('H'), so that a client of
// another protocol is told apart from a group id at once.
const magic = 0x48

// headerSize is the magic byte and the group id.
const headerSize = 5

// DefaultHeaderTimeout bounds how long an accepted connection may take to
// send its header (and, over TLS, finish its handshake).
const DefaultHeaderTimeout = 5 * time.Second

// ErrClosed is returned by Accept once a layer (or its mux) is closed.
var ErrClosed = errors.New("raftmux: closed")

// Dialer opens a connection to a member's raft address (plain TCP, or TLS
// with its handshake done), within ctx.
type Dialer func(ctx context.Context, address string) (net.Conn, error)

// TCPDialer dials plain TCP.
func TCPDialer(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", address)
}

// Mux routes the connections a listener accepts to the groups' layers.
type Mux struct {
	ln            net.Listener
	advertise     net.Addr
	dial          Dialer
	headerTimeout time.Duration

	mu     sync.Mutex
	groups map[uint32]*Layer
	closed bool
	wg     sync.WaitGroup
}

// New starts routing the connections ln accepts. advertise is the address
// the other members dial (nil: ln's own); dial opens connections to them.
func New(ln net.Listener, advertise net.Addr, dial Dialer) *Mux {
	if advertise == nil {
		advertise = ln.Addr()
	}
	m := &Mux{ln: ln, advertise: advertise, dial: dial, headerTimeout: DefaultHeaderTimeout, groups: map[uint32]*Layer{}}
	m.wg.Add(1)
	go m.accept()
	return m
}

// Layer returns the stream layer of group: the connections dialed to this
// node for it, and a Dial that announces it. A group has one layer at a
// time.
func (m *Mux) Layer(group uint32) (*Layer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, taken := m.groups[group]; taken {
		return nil, fmt.Errorf("raftmux: group %d has a layer already", group)
	}
	l := &Layer{m: m, group: group, conns: make(chan net.Conn, 16), done: make(chan struct{})}
	m.groups[group] = l
	return l, nil
}

// Close stops accepting, closes every layer, and waits for the
// connections being routed.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	layers := make([]*Layer, 0, len(m.groups))
	for _, l := range m.groups {
		layers = append(layers, l)
	}
	m.mu.Unlock()
	err := m.ln.Close()
	for _, l := range layers {
		l.Close()
	}
	m.wg.Wait()
	return err
}

func (m *Mux) accept() {
	defer m.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			m.mu.Lock()
			closed := m.closed
			m.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(backoff) // out of file descriptors, say: try again
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

// route reads conn's header and hands it to its group's layer, or closes
// it.
func (m *Mux) route(conn net.Conn) {
	m.mu.Lock()
	timeout := m.headerTimeout
	m.mu.Unlock()
	var header [headerSize]byte
	conn.SetReadDeadline(time.Now().Add(timeout))
	if _, err := io.ReadFull(conn, header[:]); err != nil || header[0] != magic {
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	group := binary.BigEndian.Uint32(header[1:])
	m.mu.Lock()
	l := m.groups[group]
	m.mu.Unlock()
	if l == nil {
		conn.Close()
		return
	}
	select {
	case l.conns <- conn:
	case <-l.done:
		conn.Close()
	}
}

// Layer is one group's raft.StreamLayer over the mux.
type Layer struct {
	m     *Mux
	group uint32
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var _ raft.StreamLayer = (*Layer)(nil)

// Accept waits for the next connection dialed to this node for the group.
func (l *Layer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

// Close stops the layer: Accept returns ErrClosed, and connections for
// the group are closed from now on.
func (l *Layer) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.m.mu.Lock()
		if l.m.groups[l.group] == l {
			delete(l.m.groups, l.group)
		}
		l.m.mu.Unlock()
	})
	return nil
}

// Addr is the address other members dial for every group of this node.
func (l *Layer) Addr() net.Addr { return l.m.advertise }

// Dial connects to a member's raft address for the group, within timeout.
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := l.m.dial(ctx, string(address))
	if err != nil {
		return nil, err
	}
	var header [headerSize]byte
	header[0] = magic
	binary.BigEndian.PutUint32(header[1:], l.group)
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetWriteDeadline(deadline)
	}
	if _, err := conn.Write(header[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raftmux: announce group %d to %s: %w", l.group, address, err)
	}
	conn.SetWriteDeadline(time.Time{})
	return conn, nil
}
