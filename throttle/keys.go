package throttle

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// A budget is what one bucket, one set of quota counters and one count of
// requests in flight cover: a tenant by default (or, for a request without
// one, a client address under [WithAnonymousLimits]), narrowed by the By…
// options of the middleware and named by [WithName]. Its store key is:
//
//   - the tenant ID (or "\x01ip:" and the address) alone, under the
//     default name with no By… option: the keys of earlier releases, so
//     that budgets kept in a shared store survive an upgrade;
//   - otherwise "\x02", the name, "\x1f", the tenant ID (or address), "\x1f",
//     then each By… part as a kind letter and either its length, ":" and
//     its value, "#" and a hash of a value longer than 128 bytes, or "-"
//     for a request without one.
//
// Tenant IDs and names hold no control character and parts are length
// prefixed, so no two budgets share a key: limiters with different names
// never share a budget in one store; limiters with the same name (the
// replicas of a service) do.

// maxPart is the longest part kept as is in a key.
const maxPart = 128

// part is one By… option: a kind letter and the value of a request.
type part struct {
	kind  byte
	value func(r *http.Request, t tenant.Tenant, st *request.State) (string, bool)
}

// ByUser gives each user of a tenant a budget of its own under the
// tenant's limits: the tenant's Subject (the token's "sub"). Requests
// without one (service tokens acting for the whole tenant) share one
// budget of the tenant. Default: one budget per tenant.
func ByUser() MiddlewareOption {
	return func(c *middlewareConfig) {
		c.parts = append(c.parts, part{'u', func(_ *http.Request, t tenant.Tenant, _ *request.State) (string, bool) {
			return t.Subject, t.Subject != ""
		}})
	}
}

// ByRoute gives each route of a tenant a budget of its own under the
// tenant's limits: the pattern the router matched ("POST /export"), not the
// path, so that /orders/1 and /orders/2 share one. Inside the router
// (mux.Handle(pattern, limiter.Middleware(ByRoute())(h))) that is the
// pattern the router set; outside it, in front of the router as
// tenancy.New wires the throttle, the stack's route lookup finds it (an
// http.ServeMux is asked, other routers give tenancy.WithRoute), one
// lookup per request. A request no route matches, or one with no router
// to ask, shares one budget of the tenant. Default: one budget per tenant.
//
// A limiter placed on a single route needs no ByRoute: give it a name of
// its own ([WithName]) and its budgets are that route's.
func ByRoute() MiddlewareOption {
	return func(c *middlewareConfig) {
		c.parts = append(c.parts, part{'r', func(r *http.Request, _ tenant.Tenant, st *request.State) (string, bool) {
			route := r.Pattern
			if route == "" && st != nil {
				route = st.Route(r)
			}
			return route, route != ""
		}})
	}
}

// ByHeader gives each value of the header name (an API key that a gateway
// checked, a client ID) a budget of its own under the tenant's limits. The
// value is hashed before it is used, so that a key is never stored in
// clear. Requests without the header share one budget of the tenant.
//
// A client that chooses the header's value can spend a fresh budget per
// value, up to the store's cap: use it for a header the client cannot
// forge (set or verified by a gateway or by authz). It panics when name is
// empty. Default: one budget per tenant.
func ByHeader(name string) MiddlewareOption {
	if strings.TrimSpace(name) == "" {
		panic("throttle: ByHeader needs a header name")
	}
	name = textproto.CanonicalMIMEHeaderKey(name)
	return func(c *middlewareConfig) {
		c.parts = append(c.parts, part{'h', func(r *http.Request, _ tenant.Tenant, _ *request.State) (string, bool) {
			v := r.Header.Get(name)
			if v == "" {
				return "", false
			}
			sum := sha256.Sum256([]byte(v))
			return base64.RawURLEncoding.EncodeToString(sum[:16]), true
		}})
	}
}

// ByKey gives each key that f returns for a request a budget of its own
// under the tenant's limits; f gets the tenant (the zero Tenant for a
// request limited by client address). A false from f means the request
// has no such key: those requests share one budget of the tenant. Keys
// longer than 128 bytes are hashed. f runs on every request and must be
// safe for concurrent use. Default (also for nil): one budget per tenant.
//
// By… options add up: ByUser() and ByRoute() together give each user a
// budget per route.
func ByKey(f func(*http.Request, tenant.Tenant) (string, bool)) MiddlewareOption {
	return func(c *middlewareConfig) {
		if f == nil {
			return
		}
		c.parts = append(c.parts, part{'k', func(r *http.Request, t tenant.Tenant, _ *request.State) (string, bool) {
			return f(r, t)
		}})
	}
}

// tenantKey and clientKey are the principals of budgets: tenant IDs cannot
// contain control characters, so the prefix keeps the two apart.
func tenantKey(id string) string { return id }

func clientKey(a netip.Addr) string { return "\x01ip:" + a.String() }

// budgetKey is the store key of a budget (see above). values are the
// parts' values in order, and ok whether the request had each.
func budgetKey(name, principal string, kinds []byte, values []string, ok []bool) string {
	if name == "" && len(kinds) == 0 {
		return principal
	}
	var b strings.Builder
	n := 3 + len(name) + len(principal)
	for _, v := range values {
		n += 8 + min(len(v), 24+maxPart)
	}
	b.Grow(n)
	b.WriteByte('\x02')
	b.WriteString(name)
	b.WriteByte('\x1f')
	b.WriteString(principal)
	b.WriteByte('\x1f')
	var num [20]byte
	for i, kind := range kinds {
		b.WriteByte(kind)
		switch v := values[i]; {
		case !ok[i]:
			b.WriteByte('-')
		case len(v) > maxPart:
			sum := sha256.Sum256([]byte(v))
			b.WriteByte('#')
			b.WriteString(base64.RawURLEncoding.EncodeToString(sum[:16]))
		default:
			b.Write(strconv.AppendInt(num[:0], int64(len(v)), 10))
			b.WriteByte(':')
			b.WriteString(v)
		}
	}
	return b.String()
}

// validName reports whether name can name a limiter: 1 to 64 lower-case
// letters, digits, '-', '_' and '.', so that it reads the same in a store
// key, a header item and a log line.
func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
