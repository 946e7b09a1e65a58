package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// TargetPolicy decides which addresses webhook deliveries may connect to.
// It is checked when a connection is dialed, after DNS resolution, so a
// name that resolves (or is rebound) to a refused address is refused too,
// whatever form the URL gave the address in.
//
// Always refused: link-local addresses (169.254.0.0/16, fe80::/10: cloud
// metadata endpoints live there, and fd00:ec2::254), unspecified addresses
// (0.0.0.0 reaches this host), multicast and broadcast, and the cluster's
// own listeners (Own). Then Deny, and, when set, only Allow.
type TargetPolicy struct {
	Allow []netip.Prefix
	Deny  []netip.Prefix
	// Own returns the cluster's own listener addresses (HTTP, raft,
	// gossip of every member; an unspecified address means every local
	// one).
	Own func() []netip.AddrPort
}

// ErrTargetRefused is wrapped by a delivery's error when the policy
// refused the target's address.
var ErrTargetRefused = errors.New("target address refused")

var awsMetadataV6 = netip.MustParseAddr("fd00:ec2::254")

// Check returns nil when a delivery may connect to addr.
func (p *TargetPolicy) Check(addr netip.AddrPort) error {
	ip := addr.Addr().Unmap()
	refuse := func(why string) error {
		return fmt.Errorf("%w: %s is %s", ErrTargetRefused, netip.AddrPortFrom(ip, addr.Port()), why)
	}
	switch {
	case ip.IsLinkLocalUnicast() || ip == awsMetadataV6:
		return refuse("link-local (cloud metadata endpoints live there)")
	case ip.IsUnspecified():
		return refuse("unspecified (it reaches this host)")
	case ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return refuse("multicast or broadcast")
	}
	if p == nil {
		return nil
	}
	if p.Own != nil {
		for _, own := range p.Own() {
			if own.Port() == addr.Port() && sameHost(own.Addr().Unmap(), ip) {
				return refuse("one of the cluster's own listeners")
			}
		}
	}
	for _, deny := range p.Deny {
		if contains(deny, ip) {
			return refuse("in --target-deny " + deny.String())
		}
	}
	if len(p.Allow) == 0 {
		return nil
	}
	for _, allow := range p.Allow {
		if contains(allow, ip) {
			return nil
		}
	}
	return refuse("outside --target-allow")
}

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.IPv6Loopback()
)

// contains reports whether prefix covers ip, loopback counting as one
// address whatever its family: a prefix that holds 127.0.0.1 holds ::1,
// and one that holds ::1 holds 127.0.0.0/8, so that denying (or allowing)
// loopback in one family does it in both.
func contains(prefix netip.Prefix, ip netip.Addr) bool {
	switch {
	case prefix.Contains(ip):
		return true
	case ip == loopback6:
		return prefix.Contains(loopback4)
	case ip.Is4() && ip.IsLoopback():
		return prefix.Contains(loopback6)
	}
	return false
}

// sameHost reports whether a connection to ip reaches a listener bound to
// own: the same address, a loopback one for a loopback or wildcard
// listener, or any local address for a wildcard listener.
func sameHost(own, ip netip.Addr) bool {
	switch {
	case own == ip:
		return true
	case ip.IsLoopback():
		return own.IsLoopback() || own.IsUnspecified()
	case own.IsUnspecified():
		return isLocalAddr(ip)
	}
	return false
}

func isLocalAddr(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: refuse rather than risk it
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if local, ok := netip.AddrFromSlice(n.IP); ok && local.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// control is the dialer's hook: it sees the resolved address.
func (p *TargetPolicy) control(_, address string, _ syscall.RawConn) error {
	addr, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read the dialed address %q", ErrTargetRefused, address)
	}
	return p.Check(addr)
}
