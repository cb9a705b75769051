// Package clientip finds the address of the client that sent a request,
// trusting forwarding headers only from configured proxies. It is shared by
// throttle (limits for requests without a tenant) and logging (remote_ip).
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds client addresses. The zero Resolver trusts no proxy and
// returns the connection's peer address. It is immutable and safe for
// concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that believes X-Forwarded-For entries added by
// proxies in trusted.
func New(trusted []netip.Prefix) Resolver {
	return Resolver{trusted: trusted}
}

func (r Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address of req. When the peer is a trusted
// proxy, X-Forwarded-For is read from the right, skipping trusted proxies:
// the first untrusted address is the client. Entries to its left were
// written by the client itself and are ignored. It returns the zero Addr
// when RemoteAddr cannot be parsed.
func (r Resolver) ClientIP(req *http.Request) netip.Addr {
	peer := parseHostPort(req.RemoteAddr)
	if !peer.IsValid() || len(r.trusted) == 0 || !r.isTrusted(peer) {
		return peer
	}
	client := peer
	values := req.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a := parseHostPort(strings.TrimSpace(hops[j]))
			if !a.IsValid() {
				return client // a malformed entry: trust nothing beyond it
			}
			client = a
			if !r.isTrusted(a) {
				return a
			}
		}
	}
	return client
}

func parseHostPort(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
