package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/scheduler"
)

// targetPolicy builds the webhook target policy from the flags; the
// node's and its members' listeners are refused as they are now.
func targetPolicy(f serverFlags, node func() *cluster.Node, httpListener net.Addr) (*scheduler.TargetPolicy, *url.URL, error) {
	p := &scheduler.TargetPolicy{}
	for _, l := range []struct {
		flag string
		in   []string
		out  *[]netip.Prefix
	}{{"--target-allow", f.targetAllow, &p.Allow}, {"--target-deny", f.targetDeny, &p.Deny}} {
		for _, s := range l.in {
			prefix, err := netip.ParsePrefix(s)
			if err != nil {
				addr, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return nil, nil, fmt.Errorf("%w: %s %q: not a CIDR (like 10.0.0.0/8) or an IP address", errUsage, l.flag, s)
				}
				prefix = netip.PrefixFrom(addr, addr.BitLen())
			}
			*l.out = append(*l.out, prefix.Masked())
		}
	}
	own := &ownListeners{compute: func() []netip.AddrPort {
		addrs := []string{httpListener.String(), f.raftAddr, f.gossipAddr}
		if n := node(); n != nil {
			st := n.Status()
			addrs = append(addrs, st.RaftAddr, st.GossipAddr)
			if members, err := n.Members(); err == nil {
				for _, m := range members {
					addrs = append(addrs, m.HTTPAddr, m.RaftAddr, m.GossipAddr)
				}
			}
		}
		var out []netip.AddrPort
		for _, a := range addrs {
			if ap, err := netip.ParseAddrPort(a); err == nil {
				out = append(out, ap)
			} else if host, port, err := net.SplitHostPort(a); err == nil && host == "" {
				if ap, err := netip.ParseAddrPort("0.0.0.0:" + port); err == nil {
					out = append(out, ap)
				}
			}
		}
		return out
	}}
	p.Own = own.get
	var proxy *url.URL
	if f.targetProxy != "" {
		u, err := url.Parse(f.targetProxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, fmt.Errorf("%w: --target-proxy %q: want an http(s) URL like http://proxy:3128", errUsage, f.targetProxy)
		}
		proxy = u
	}
	return p, proxy, nil
}

// ownListeners caches the cluster's listener addresses for a second: they
// are asked for on every new webhook connection, and reading the members
// is a round trip through raft's main loop.
type ownListeners struct {
	compute func() []netip.AddrPort

	mu    sync.Mutex
	at    time.Time
	addrs []netip.AddrPort
}

func (o *ownListeners) get() []netip.AddrPort {
	o.mu.Lock()
	defer o.mu.Unlock()
	if now := time.Now(); now.Sub(o.at) > time.Second {
		o.addrs, o.at = o.compute(), now
	}
	return o.addrs
}
