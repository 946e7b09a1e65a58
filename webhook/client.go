package webhook

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrAborted is the error of a delivery cut off by Client.Abort (its
// scheduler's leadership ended).
var ErrAborted = errors.New("delivery aborted: this node stopped leading the task's group")

// Client holds the connections deliveries are sent on: keep-alive
// connections pooled per target host, every one checked against the
// target policy when dialed, no redirects followed (a 3xx is a failed
// attempt), no proxy unless one is given (never from the environment).
//
// Without a proxy it is fasthttp's client, which writes a request and
// reads its answer on the calling goroutine: net/http's client hands
// every request to two goroutines of its connection and back (in a CPU
// profile of a burst of deliveries, those two with the delivering
// goroutines were about two thirds of the node). With a proxy
// it is net/http's client, which speaks to HTTP proxies in absolute form
// (fasthttp only tunnels, with CONNECT, which proxies commonly refuse for
// plain http targets).
//
// A delivery in progress is not tied to a context: Abort closes every
// connection instead, which ends whatever is being sent or waited for on
// them, and refuses new ones until Reopen.
type Client struct {
	direct  *fasthttp.Client
	proxied *http.Client

	mu      sync.Mutex
	aborted bool
	conns   map[*trackedConn]struct{}
}

// NewClient returns a delivery client with at most maxConnsPerHost
// connections to one host, each checked against policy (nil: only the
// always-refused addresses), through proxy if it is not nil.
func NewClient(maxConnsPerHost int, policy *TargetPolicy, proxy *url.URL) *Client {
	c := &Client{conns: make(map[*trackedConn]struct{})}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: policy.control}
	if proxy != nil {
		c.proxied = newProxiedClient(maxConnsPerHost, dialer, proxy)
		return c
	}
	c.direct = &fasthttp.Client{
		Name:                      "Hourglass",
		MaxConnsPerHost:           maxConnsPerHost,
		MaxConnWaitTimeout:        DefaultTimeout,
		ReadBufferSize:            maxResponseHeader, // the response header must fit
		MaxResponseBodySize:       maxResponseBody,
		DisablePathNormalizing:    true, // the URL is sent as the task gave it
		MaxIdemponentCallAttempts: 2,
		RetryIfErr:                c.retryClosedConn,
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			return c.dial(dialer, addr, timeout)
		},
	}
	return c
}

// retryClosedConn sends a request again, once, when its connection was
// closed before any answer came: a keep-alive connection the target had
// closed while it was idle (Node.js closes them after 5 s). net/http
// notices those in the background; fasthttp only when it uses one. If
// the target instead read the request and closed without answering,
// it gets it twice: deliveries are at least once.
//
// Never after Abort: fasthttp reports any error on an answer's first
// byte as io.EOF, so a delivery whose connection Abort closed looks the
// same, and its retry could take another pooled connection that Abort
// had not closed yet and deliver the attempt again after leadership
// ended. Abort sets aborted before it closes anything.
func (c *Client) retryClosedConn(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	closed := errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	return false, attempts == 1 && closed && !errors.Is(err, ErrAborted) && !c.isAborted()
}

// dial connects to addr, checked against the policy by the dialer, and
// tracks the connection for Abort.
func (c *Client) dial(dialer *net.Dialer, addr string, timeout time.Duration) (net.Conn, error) {
	if c.isAborted() {
		return nil, ErrAborted
	}
	d := *dialer
	d.Timeout = min(timeout, dialer.Timeout)
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: conn, client: c}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		conn.Close()
		return nil, ErrAborted
	}
	c.conns[tc] = struct{}{}
	return tc, nil
}

// Abort ends every delivery in progress on c, closing its connections,
// and refuses new ones until Reopen. A delivery through a proxy ends
// with its context instead.
func (c *Client) Abort() {
	c.mu.Lock()
	c.aborted = true
	conns := make([]*trackedConn, 0, len(c.conns))
	for tc := range c.conns {
		conns = append(conns, tc)
	}
	c.mu.Unlock()
	for _, tc := range conns {
		tc.Close()
	}
}

// isAborted reports whether Abort was called since the last Reopen.
func (c *Client) isAborted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aborted
}

// Reopen lets c connect again after Abort.
func (c *Client) Reopen() {
	if c.direct != nil {
		c.direct.CloseIdleConnections() // those Abort closed
	}
	c.mu.Lock()
	c.aborted = false
	c.mu.Unlock()
}

// trackedConn is a connection Abort can reach.
type trackedConn struct {
	net.Conn
	client *Client
	once   sync.Once
	err    error
}

func (tc *trackedConn) Close() error {
	tc.once.Do(func() {
		tc.client.mu.Lock()
		delete(tc.client.conns, tc)
		tc.client.mu.Unlock()
		tc.err = tc.Conn.Close()
	})
	return tc.err
}

// newProxiedClient is net/http's client through proxy.
func newProxiedClient(maxConnsPerHost int, dialer *net.Dialer, proxy *url.URL) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialer.DialContext
	transport.Proxy = http.ProxyURL(proxy)
	transport.MaxIdleConns = 4 * maxConnsPerHost
	transport.MaxIdleConnsPerHost = maxConnsPerHost
	transport.ResponseHeaderTimeout = 0 // the per-attempt context bounds it
	transport.MaxResponseHeaderBytes = maxResponseHeader
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
