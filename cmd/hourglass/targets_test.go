package main

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/webhook"
)

// TestListenerAddrsResolveHostNames: a member advertised by host name, as
// in Docker Compose ("hourglass-2:7070"), is refused as a webhook target at
// every address the name resolves to.
func TestListenerAddrsResolveHostNames(t *testing.T) {
	resolve := func(host string) []netip.Addr {
		if host == "hourglass-2" {
			return []netip.Addr{netip.MustParseAddr("172.20.0.3"), netip.MustParseAddr("::ffff:172.20.0.4")}
		}
		return nil
	}
	got := listenerAddrs([]string{"10.0.0.1:7071", ":7072", "hourglass-2:7070", "unknown-host:7070", "no port", "hourglass-2:99999"}, resolve)
	want := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:7071"),
		netip.MustParseAddrPort("0.0.0.0:7072"),
		netip.MustParseAddrPort("172.20.0.3:7070"),
		netip.MustParseAddrPort("172.20.0.4:7070"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listenerAddrs = %v, want %v", got, want)
	}
	policy := &webhook.TargetPolicy{Own: func() []netip.AddrPort { return got }}
	if err := policy.Check(netip.MustParseAddrPort("172.20.0.3:7070")); !errors.Is(err, webhook.ErrTargetRefused) {
		t.Fatalf("a member's API, advertised by name, as a target: %v", err)
	}
	if err := policy.Check(netip.MustParseAddrPort("172.20.0.3:8080")); err != nil {
		t.Fatalf("another port of the member's host: %v", err)
	}
	// The real resolver: localhost is a name too.
	if addrs := listenerAddrs([]string{"localhost:7070"}, lookupHost); !slices.Contains(addrs, netip.MustParseAddrPort("127.0.0.1:7070")) {
		t.Fatalf("localhost:7070 resolved to %v", addrs)
	}
}

func TestTargetFlagsTakeAddressClasses(t *testing.T) {
	f := serverFlags{targetDeny: []string{"loopback", "10.1.0.0/16"}}
	p, _, err := targetPolicy(f, func() *cluster.Node { return nil }, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	for addr, ok := range map[string]bool{"[::1]:80": false, "127.0.0.2:80": false, "10.1.2.3:80": false, "10.2.0.1:80": true} {
		if err := p.Check(netip.MustParseAddrPort(addr)); (err == nil) != ok {
			t.Errorf("--target-deny loopback,10.1.0.0/16: %s: %v, want allowed=%v", addr, err, ok)
		}
	}
	if _, _, err := targetPolicy(serverFlags{targetDeny: []string{"intranet"}}, func() *cluster.Node { return nil }, &net.TCPAddr{}); err == nil ||
		!strings.Contains(err.Error(), "--target-deny") {
		t.Errorf("an unknown class: %v", err)
	}
}
