package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/tenancykit/tenancy/internal/clientip"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestClientIP(t *testing.T) {
	proxies := prefixes("10.0.0.0/8", "192.168.1.0/24", "fd00::/8")
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string // one X-Forwarded-For header per element
		want    string   // "" means the zero Addr
	}{
		// No trusted proxy: the peer, whatever the headers say.
		{name: "zero resolver: peer", remote: "203.0.113.7:1234", want: "203.0.113.7"},
		{name: "zero resolver ignores XFF", remote: "10.0.0.1:1234", xff: []string{"198.51.100.1"}, want: "10.0.0.1"},

		// An untrusted peer's XFF is its own invention.
		{name: "untrusted peer: XFF ignored", trusted: proxies, remote: "203.0.113.7:1234", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "untrusted peer: XFF of a trusted proxy ignored", trusted: proxies, remote: "203.0.113.7:1234", xff: []string{"10.0.0.5"}, want: "203.0.113.7"},
		{name: "trusted peer without XFF", trusted: proxies, remote: "10.0.0.1:80", want: "10.0.0.1"},

		// Rightmost untrusted entry.
		{name: "one hop", trusted: proxies, remote: "10.0.0.1:80", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "client-written entries to the left are ignored", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"6.6.6.6, 7.7.7.7, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "trusted hops are skipped", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"6.6.6.6, 198.51.100.1, 192.168.1.9, 10.2.3.4"}, want: "198.51.100.1"},
		{name: "across several headers, last header last", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"6.6.6.6, 198.51.100.1", "192.168.1.9", "10.2.3.4"}, want: "198.51.100.1"},
		{name: "across several headers, untrusted in the last", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"198.51.100.1", "198.51.100.2, 10.0.0.3"}, want: "198.51.100.2"},
		{name: "spaces and tabs around entries", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{" 6.6.6.6 ,\t198.51.100.1 , 10.9.9.9 "}, want: "198.51.100.1"},

		// All trusted: the leftmost is as far as we can see.
		{name: "all hops trusted: leftmost", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"192.168.1.2, 10.0.0.7", "10.0.0.8"}, want: "192.168.1.2"},

		// A malformed entry ends the walk at the last good hop.
		{name: "malformed entry stops the walk", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"198.51.100.1, garbage, 10.0.0.9"}, want: "10.0.0.9"},
		{name: "malformed rightmost: the peer", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"198.51.100.1, unknown"}, want: "10.0.0.1"},
		{name: "empty entry stops the walk", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"198.51.100.1,,10.0.0.9"}, want: "10.0.0.9"},
		{name: "empty header: the peer", trusted: proxies, remote: "10.0.0.1:80", xff: []string{""}, want: "10.0.0.1"},
		{name: "obfuscated identifier stops the walk", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"198.51.100.1, _hidden"}, want: "10.0.0.1"},

		// IPv6 and IPv4-mapped addresses.
		{name: "IPv6 peer, zero resolver", remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "IPv6 through IPv6 proxy", trusted: proxies, remote: "[fd00::1]:443", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "IPv6 entry with brackets and port", trusted: proxies, remote: "[fd00::1]:443", xff: []string{"[2001:db8::7]:5555"}, want: "2001:db8::7"},
		{name: "IPv4-mapped peer is unmapped", remote: "[::ffff:203.0.113.7]:1234", want: "203.0.113.7"},
		{name: "IPv4-mapped proxy is trusted by its IPv4 prefix", trusted: proxies, remote: "[::ffff:10.0.0.1]:80",
			xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "IPv4-mapped entry is unmapped and trusted", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"198.51.100.1, ::ffff:10.0.0.2"}, want: "198.51.100.1"},
		{name: "IPv4-mapped client is unmapped", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1"},

		// Ports in entries.
		{name: "IPv4 entry with port", trusted: proxies, remote: "10.0.0.1:80", xff: []string{"198.51.100.1:4711"}, want: "198.51.100.1"},
		{name: "trusted entry with port is skipped", trusted: proxies, remote: "10.0.0.1:80",
			xff: []string{"198.51.100.1, 10.0.0.2:8080"}, want: "198.51.100.1"},

		// Peers that are not addresses.
		{name: "RemoteAddr without port", remote: "203.0.113.7", want: "203.0.113.7"},
		{name: "unparseable RemoteAddr", trusted: proxies, remote: "pipe", xff: []string{"198.51.100.1"}, want: ""},
		{name: "empty RemoteAddr", remote: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r clientip.Resolver
			if tt.trusted != nil {
				r = clientip.New(tt.trusted)
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			before := req.Header.Clone()
			got := r.ClientIP(req)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
			if len(req.Header) != len(before) || len(req.Header.Values("X-Forwarded-For")) != len(tt.xff) {
				t.Error("ClientIP changed the request's headers")
			}
		})
	}
}

// TestResolverConcurrent: a Resolver is shared by every request.
func TestResolverConcurrent(t *testing.T) {
	r := clientip.New(prefixes("10.0.0.0/8"))
	done := make(chan netip.Addr)
	for range 8 {
		go func() {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = "10.0.0.1:80"
			req.Header.Set("X-Forwarded-For", "198.51.100.1")
			var a netip.Addr
			for range 100 {
				a = r.ClientIP(req)
			}
			done <- a
		}()
	}
	for range 8 {
		if a := <-done; a != netip.MustParseAddr("198.51.100.1") {
			t.Errorf("ClientIP = %v", a)
		}
	}
}
