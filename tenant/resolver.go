package tenant

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// ErrNoTenant is returned by a [Resolver] whose source names no tenant.
var ErrNoTenant = errors.New("tenant: no tenant in request")

// ErrMismatch is returned by [Chain] when two sources name different tenants.
var ErrMismatch = errors.New("tenant: sources name different tenants")

// A Resolver finds the tenant a request is for. It returns [ErrNoTenant]
// when its source is absent, and an error wrapping [ErrInvalidID] (or
// [ErrUnknownTier]) when the source names something that is not a valid
// tenant ID (or tier). A zero Tenant with a nil error counts as no tenant.
//
// Resolvers must be safe for concurrent use and must not modify the request.
type Resolver interface {
	Resolve(r *http.Request) (Tenant, error)
}

// ResolverFunc adapts a function to a [Resolver].
type ResolverFunc func(r *http.Request) (Tenant, error)

// Resolve calls f(r).
func (f ResolverFunc) Resolve(r *http.Request) (Tenant, error) { return f(r) }

// Verified returns the resolver of the tenant already in the request
// context, put there by authz after verifying a token. It is the source to
// trust first.
func Verified() Resolver {
	return ResolverFunc(func(r *http.Request) (Tenant, error) {
		if t, ok := FromContext(r.Context()); ok {
			return t, nil
		}
		return Tenant{}, ErrNoTenant
	})
}

// HeaderOption configures [TrustedHeader].
type HeaderOption func(*headerConfig)

type headerConfig struct {
	idHeader   string
	tierHeader string
	tiers      *Tiers
}

// WithIDHeader names the header that carries the tenant ID. Default (also
// for "") "X-Tenant-ID".
func WithIDHeader(name string) HeaderOption {
	return func(c *headerConfig) { c.idHeader = name }
}

// WithTierHeader names the header that carries the tier's name, a tier of
// tiers (default, also for nil, [DefaultTiers]); a name not in tiers is
// refused. Default (also for ""): no tier header, the tenant's tier stays
// unknown.
func WithTierHeader(name string, tiers *Tiers) HeaderOption {
	return func(c *headerConfig) { c.tierHeader, c.tiers = name, tiers }
}

// TrustedHeader returns a resolver that reads the tenant from request
// headers set by a trusted hop, for services that sit behind something that
// already verified the caller. trustedPeers are the networks of the
// immediate peers (the gateway or sidecar that verified the caller) allowed
// to set the headers; a request from any other address names no tenant.
// They are required: a trusted header anyone can send is a tenant anyone
// can claim. The resolver is never part of a default chain: the service
// must build it explicitly and name the peers it trusts.
func TrustedHeader(trustedPeers []netip.Prefix, opts ...HeaderOption) (Resolver, error) {
	var cfg headerConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.idHeader == "" {
		cfg.idHeader = "X-Tenant-ID"
	}
	if cfg.tiers == nil {
		cfg.tiers = DefaultTiers
	}
	if len(trustedPeers) == 0 {
		return nil, errors.New("tenant: TrustedHeader needs trustedPeers: list the networks of the hops allowed to set " + cfg.idHeader)
	}
	for _, p := range trustedPeers {
		if !p.IsValid() {
			return nil, errors.New("tenant: TrustedHeader: trustedPeers holds an invalid prefix")
		}
	}
	// A copy: the caller's slice may change after the check.
	peers := slices.Clone(trustedPeers)
	return ResolverFunc(func(r *http.Request) (Tenant, error) {
		if !peerTrusted(r.RemoteAddr, peers) {
			return Tenant{}, ErrNoTenant
		}
		ids := r.Header.Values(cfg.idHeader)
		if len(ids) == 0 {
			return Tenant{}, ErrNoTenant
		}
		// A proxy may fold repeated headers into one comma-separated
		// line; either way the request names more than one tenant.
		if len(ids) > 1 || strings.Contains(ids[0], ",") {
			return Tenant{}, &IDError{Reason: "header " + cfg.idHeader + " names more than one tenant"}
		}
		t, err := New(ids[0], Tier{})
		if err != nil {
			return Tenant{}, err
		}
		t.Source = SourcePeer
		if cfg.tierHeader != "" {
			switch names := r.Header.Values(cfg.tierHeader); {
			case len(names) > 1:
				return Tenant{}, fmt.Errorf("%w: header %s given more than once", ErrUnknownTier, cfg.tierHeader)
			case len(names) == 1 && names[0] != "":
				tier, ok := cfg.tiers.Lookup(names[0])
				if !ok {
					return Tenant{}, fmt.Errorf("%w in header %s", ErrUnknownTier, cfg.tierHeader)
				}
				t.Tier = tier
			}
		}
		return t, nil
	}), nil
}

func peerTrusted(remoteAddr string, nets []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Subdomain returns a resolver that reads the tenant from the first label of
// the request's host under baseDomain: with baseDomain "api.example.com",
// "acme.api.example.com" is tenant "acme". Hosts are compared
// case-insensitively and the ID is lower-cased; a host with more than one
// label above baseDomain, or baseDomain itself, names no tenant. Any client
// can send any Host, so the tenant is [SourceClaimed]: put it in a [Chain]
// after [Verified] to bind a token to its subdomain.
func Subdomain(baseDomain string) (Resolver, error) {
	base := strings.ToLower(strings.Trim(baseDomain, "."))
	if base == "" || strings.ContainsAny(base, "/: ") {
		return nil, fmt.Errorf("tenant: Subdomain needs a domain name such as \"api.example.com\", got %q", baseDomain)
	}
	suffix := "." + base
	return ResolverFunc(func(r *http.Request) (Tenant, error) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		label, ok := strings.CutSuffix(host, suffix)
		if !ok || label == "" || strings.Contains(label, ".") {
			return Tenant{}, ErrNoTenant
		}
		return claimed(label)
	}), nil
}

// PathPrefix returns a resolver that reads the tenant from the path segment
// after prefix: with prefix "/t/", "/t/acme/orders" is tenant "acme". The
// request path is not changed; route patterns such as "/t/{tenant}/orders"
// keep working. The tenant is [SourceClaimed], as with [Subdomain].
func PathPrefix(prefix string) (Resolver, error) {
	if !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("tenant: PathPrefix needs a prefix that starts and ends with \"/\", such as \"/t/\", got %q", prefix)
	}
	return ResolverFunc(func(r *http.Request) (Tenant, error) {
		// Work on the escaped path and unescape the one segment, as
		// http.ServeMux does for "{tenant}": "/t/acme%2Fother/" is
		// tenant "acme/other", never "acme".
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
		if !ok {
			return Tenant{}, ErrNoTenant
		}
		seg, _, _ := strings.Cut(rest, "/")
		if seg == "" {
			return Tenant{}, ErrNoTenant
		}
		id, err := url.PathUnescape(seg)
		if err != nil {
			return Tenant{}, &IDError{Reason: "malformed escape in path segment"}
		}
		return claimed(id)
	}), nil
}

// Chain returns a resolver that consults every resolver in order. The first
// that names a tenant decides it; a later one that names a different tenant
// ID makes the chain fail with [ErrMismatch], so that a token for one tenant
// cannot be used on another tenant's subdomain. Where sources agree, the
// tenant of a verified source is kept over a claimed one, whatever the
// order. An invalid ID from any source fails the chain. The usual order is
// Verified() first.
func Chain(rs ...Resolver) Resolver {
	return ResolverFunc(func(r *http.Request) (Tenant, error) {
		var found Tenant
		for _, res := range rs {
			t, err := res.Resolve(r)
			if errors.Is(err, ErrNoTenant) {
				continue
			}
			if err != nil {
				return Tenant{}, err
			}
			switch {
			case found.IsZero():
				found = t
			case t.ID != found.ID:
				return Tenant{}, ErrMismatch
			case !found.Source.Verified() && t.Source.Verified():
				found = t
			}
		}
		if found.IsZero() {
			return Tenant{}, ErrNoTenant
		}
		return found, nil
	})
}

// claimed returns the tenant a request names about itself.
func claimed(id string) (Tenant, error) {
	t, err := New(id, Tier{})
	t.Source = SourceClaimed
	return t, err
}
