package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/webhook"
)

// addressClass gives the networks of a name --target-deny and
// --target-allow take besides CIDRs, in both address families.
func addressClass(name string) ([]string, bool) {
	switch name {
	case "loopback":
		return []string{"127.0.0.0/8", "::1/128"}, true
	case "private":
		return []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}, true
	}
	return nil, false
}

// targetPolicy builds the webhook target policy from the flags; the
// node's and its members' listeners are refused as they are now.
func targetPolicy(f serverFlags, node func() *cluster.Node, httpListener net.Addr) (*webhook.TargetPolicy, *url.URL, error) {
	p := &webhook.TargetPolicy{}
	for _, l := range []struct {
		flag string
		in   []string
		out  *[]netip.Prefix
	}{{"--target-allow", f.targetAllow, &p.Allow}, {"--target-deny", f.targetDeny, &p.Deny}} {
		for _, s := range l.in {
			if class, ok := addressClass(s); ok {
				for _, c := range class {
					*l.out = append(*l.out, netip.MustParsePrefix(c))
				}
				continue
			}
			prefix, err := netip.ParsePrefix(s)
			if err != nil {
				addr, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return nil, nil, fmt.Errorf("%w: %s %q: not a CIDR (like 10.0.0.0/8), an IP address, loopback or private", errUsage, l.flag, s)
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
		return listenerAddrs(addrs, lookupHost)
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

// listenerAddrs turns listener addresses into the IP addresses and ports
// they stand for: "host:port" with an IP as it is, ":port" as every local
// address, and a host name (advertised addresses in Docker Compose or
// Kubernetes are names) as every address it resolves to now, so that
// http://hourglass-2:7070/ is known for the cluster's own API.
func listenerAddrs(addrs []string, resolve func(host string) []netip.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			out = append(out, ap)
			continue
		}
		host, portText, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			continue
		}
		if host == "" {
			out = append(out, netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)))
			continue
		}
		for _, ip := range resolve(host) {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		}
	}
	return out
}

// lookupHost resolves a member's host name, giving up after a second (the
// policy then knows that member's listeners by their IP addresses only,
// until the next try).
func lookupHost(host string) []netip.Addr {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	return ips
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
