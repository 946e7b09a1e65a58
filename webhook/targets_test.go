package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// canary is a listener that counts every connection it accepts.
type canary struct {
	ln   net.Listener
	hits atomic.Int64
}

func newCanary(t *testing.T, addr string) *canary {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &canary{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.hits.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

func (c *canary) port() uint16 { return uint16(c.ln.Addr().(*net.TCPAddr).Port) }

// No form of a refused address reaches it: the address itself, IPv4-mapped
// IPv6, decimal, octal and hex spellings, a name resolving to it, a
// redirect to it; nor do link-local metadata addresses or the cluster's own
// listeners.
func TestTargetPolicyRefusesEveryFormOfARefusedAddress(t *testing.T) {
	denied := newCanary(t, "127.0.0.1:0")
	own := newCanary(t, "127.0.0.2:0") // stands for the node's API or raft port
	redirector := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/", denied.port()), http.StatusFound)
	})}
	rln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	go redirector.Serve(rln)
	t.Cleanup(func() { redirector.Close() })

	policy := &TargetPolicy{
		Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Own:  func() []netip.AddrPort { return []netip.AddrPort{netip.MustParseAddrPort(own.ln.Addr().String())} },
	}
	s := &Sender{Client: NewClient(4, policy, nil), Now: time.Now}
	send := func(url string) error {
		task := &fsmpb.Task{Id: "t1", Payload: []byte("{}"), Target: &fsmpb.Target{Url: url, Timeout: int64(3 * time.Second)}}
		return s.Send(context.Background(), task)
	}
	p, o := denied.port(), own.port()
	for _, c := range []struct {
		url     string
		refused bool // the policy (not DNS or the network) must be what stops it
	}{
		{fmt.Sprintf("http://127.0.0.1:%d/", p), true},
		{fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", p), true},
		{fmt.Sprintf("http://[::ffff:7f00:1]:%d/", p), true},
		{fmt.Sprintf("http://2130706433:%d/", p), false},
		{fmt.Sprintf("http://0177.0.0.1:%d/", p), false},
		{fmt.Sprintf("http://0x7f.0.0.1:%d/", p), false},
		{fmt.Sprintf("http://017700000001:%d/", p), false},
		{fmt.Sprintf("http://localhost:%d/", p), false}, // 127.0.0.1 refused; ::1 has no listener
		{fmt.Sprintf("http://127.0.0.2:%d/", o), true},
		{fmt.Sprintf("http://[::ffff:127.0.0.2]:%d/", o), true},
		{"http://169.254.169.254/latest/meta-data/", true},
		{"http://[fe80::1]/", true},
		{"http://[fd00:ec2::254]/", true},
		{"http://0.0.0.0:" + fmt.Sprint(p) + "/", true},
	} {
		err := send(c.url)
		if err == nil {
			t.Errorf("%s: delivered", c.url)
			continue
		}
		if c.refused && !errors.Is(err, ErrTargetRefused) {
			t.Errorf("%s: %v, want the target policy to refuse it", c.url, err)
		}
	}
	// The redirect is answered, not followed.
	if err := send("http://" + rln.Addr().String() + "/"); err == nil || err.Error() != "HTTP 302 Found" {
		t.Fatalf("redirector: %v, want its 302 as a failed attempt", err)
	}
	if n := denied.hits.Load() + own.hits.Load(); n != 0 {
		t.Fatalf("the canaries were reached %d times", n)
	}
}

func TestTargetPolicyAllowList(t *testing.T) {
	p := &TargetPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Deny: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}
	for addr, ok := range map[string]bool{
		"10.1.2.3:443": true, "10.9.1.1:443": false, "192.168.1.1:80": false, "[::ffff:10.1.2.3]:80": true, "169.254.169.254:80": false,
	} {
		if err := p.Check(netip.MustParseAddrPort(addr)); (err == nil) != ok {
			t.Errorf("%s: %v, want allowed=%v", addr, err, ok)
		}
	}
	// Loopback is one class in both families.
	v4 := &TargetPolicy{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	v6 := &TargetPolicy{Deny: []netip.Prefix{netip.MustParsePrefix("::1/128")}}
	only4 := &TargetPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	for _, c := range []struct {
		policy *TargetPolicy
		addr   string
		ok     bool
	}{
		{v4, "[::1]:80", false}, {v4, "127.0.0.5:80", false}, {v4, "[::ffff:127.0.0.1]:80", false}, {v4, "[::2]:80", true},
		{v6, "127.0.0.1:80", false}, {v6, "127.1.2.3:80", false}, {v6, "[::1]:80", false}, {v6, "10.0.0.1:80", true},
		{only4, "[::1]:80", true}, {only4, "127.0.0.1:80", true}, {only4, "10.0.0.1:80", false},
	} {
		if err := c.policy.Check(netip.MustParseAddrPort(c.addr)); (err == nil) != c.ok {
			t.Errorf("deny %v allow %v, %s: %v, want allowed=%v", c.policy.Deny, c.policy.Allow, c.addr, err, c.ok)
		}
	}
	// Without a policy only the always-refused addresses are refused.
	var none *TargetPolicy
	if none.Check(netip.MustParseAddrPort("127.0.0.1:80")) != nil || none.Check(netip.MustParseAddrPort("169.254.169.254:80")) == nil {
		t.Error("nil policy: want loopback allowed, link-local refused")
	}
}
