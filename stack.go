package tenancy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// Stack is the module's middleware wired in the one order that works:
//
//	access log → meter → authz → tenant resolver → throttle → credentials → your router
//
// The access log sees every refusal and the meter counts it; authz sets the
// tenant before a resolver checks it against the path or host and before
// the throttle spends its budget; credentials are fetched only for requests
// the throttle let through. Each part is optional: a Stack holds the parts
// it was given. It owns the route: the pattern the router sets, and for a
// request refused before routing, the one the router would have chosen
// (an http.ServeMux is asked; other routers give [WithRoute]).
//
// One state is allocated per request and shared by every part, which is
// why the stack costs less than the same parts wired by hand around each
// other (which still works, in the same order).
//
// A Stack is immutable and safe for concurrent use.
type Stack struct {
	c config
}

// Option configures a [Stack]: each names a part and its settings.
type Option func(*config)

type config struct {
	logger       *slog.Logger
	accessOpts   []logging.AccessOption
	recorder     *meter.Recorder
	verifier     authz.TokenVerifier
	authzOpts    []authz.MiddlewareOption
	resolver     tenant.Resolver
	limiter      *throttle.Limiter
	throttleOpts []throttle.MiddlewareOption
	credentials  func(http.Handler) http.Handler
	route        func(*http.Request) string
	bypass       map[string]bool
	errs         []error

	messages messageConfig // WithMessageTrust, WithMessageCredentials
}

// WithAccessLog writes one access line per request to logger, outermost
// (see logging.AccessLog). Default: no access log.
func WithAccessLog(logger *slog.Logger, opts ...logging.AccessOption) Option {
	return func(c *config) {
		if logger == nil {
			c.errs = append(c.errs, errors.New("tenancy: WithAccessLog: nil logger"))
		}
		c.logger, c.accessOpts = logger, opts
	}
}

// WithMeter meters every request for its tenant, refusals included, and
// puts rec in the context for meter.Add (see meter.Middleware). Default: no
// metering.
func WithMeter(rec *meter.Recorder) Option {
	return func(c *config) {
		if rec == nil {
			c.errs = append(c.errs, errors.New("tenancy: WithMeter: nil *meter.Recorder"))
		}
		c.recorder = rec
	}
}

// WithAuthz verifies each request's bearer token with v (an
// *authz.Verifier for one issuer, *authz.Issuers for several) and puts its
// tenant in the context (see authz.Middleware). Default: no token check.
func WithAuthz(v authz.TokenVerifier, opts ...authz.MiddlewareOption) Option {
	return func(c *config) {
		if v == nil || v == (*authz.Verifier)(nil) || v == (*authz.Issuers)(nil) {
			c.errs = append(c.errs, errors.New("tenancy: WithAuthz: nil verifier"))
		}
		c.verifier, c.authzOpts = v, opts
	}
}

// WithResolver also resolves the tenant with res (a path prefix, a
// subdomain, a trusted gateway's header), inside authz: a token and res
// that name different tenants are refused with 403 (see
// tenant.Middleware). Default: none.
func WithResolver(res tenant.Resolver) Option {
	return func(c *config) {
		if res == nil {
			c.errs = append(c.errs, errors.New("tenancy: WithResolver: nil tenant.Resolver"))
		}
		c.resolver = res
	}
}

// WithThrottle limits each tenant by l (see throttle.Limiter.Middleware).
// Default: no limits.
func WithThrottle(l *throttle.Limiter, opts ...throttle.MiddlewareOption) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("tenancy: WithThrottle: nil *throttle.Limiter"))
		}
		c.limiter, c.throttleOpts = l, opts
	}
}

// WithCredentials runs mw, innermost: awscreds.Middleware(provider), so
// that a tenant's AWS credentials are ready before the handler. It is a middleware rather than the provider so that this
// package does not compile the AWS SDK into services that do not use it.
// Default: none.
func WithCredentials(mw func(http.Handler) http.Handler) Option {
	return func(c *config) {
		if mw == nil {
			c.errs = append(c.errs, errors.New("tenancy: WithCredentials: nil middleware"))
		}
		c.credentials = mw
	}
}

// WithRoute gives the route pattern of every request, for the access log
// and the meter: the router's own lookup, which answers for a request the
// stack refused before the router saw it too (the router adapters in
// adapters/ give theirs). Default: the r.Pattern the router set, and for a
// refused request, when the handler wrapped is an *http.ServeMux, its
// Handler method; otherwise refused requests have no route.
func WithRoute(f func(*http.Request) string) Option {
	return func(c *config) {
		if f == nil {
			c.errs = append(c.errs, errors.New("tenancy: WithRoute: nil function"))
		}
		c.route = f
	}
}

// WithBypass sends requests for these exact paths (a load balancer's
// health checks: "/healthz", "/readyz") straight to the router, past
// every part: no access line, no metering, no token needed, no limit.
// Each path starts with "/"; the match is on the request's path, exactly.
// Default: none.
func WithBypass(paths ...string) Option {
	return func(c *config) {
		if len(paths) == 0 {
			c.errs = append(c.errs, errors.New("tenancy: WithBypass: no path"))
		}
		for _, p := range paths {
			if !strings.HasPrefix(p, "/") {
				c.errs = append(c.errs, fmt.Errorf("tenancy: WithBypass: path %q does not start with /", p))
				continue
			}
			if c.bypass == nil {
				c.bypass = map[string]bool{}
			}
			c.bypass[p] = true
		}
	}
}

// New returns a Stack of the parts the options name. Mistakes (a nil
// part, no part at all) are reported here, naming the option to fix.
func New(opts ...Option) (*Stack, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	if c.logger == nil && c.recorder == nil && c.verifier == nil && c.resolver == nil && c.limiter == nil && c.credentials == nil && c.messages.trust == nil {
		return nil, errors.New("tenancy: New needs at least one part: WithAccessLog, WithMeter, WithAuthz, WithResolver, WithThrottle, WithCredentials or WithMessageTrust")
	}
	return &Stack{c: c}, nil
}

// Wrap returns next (the service's router, usually) inside the stack. It
// is a func(http.Handler) http.Handler, for routers' Use methods.
func (s *Stack) Wrap(next http.Handler) http.Handler {
	if next == nil {
		panic("tenancy: Stack.Wrap needs a handler")
	}
	c := &s.c
	lookup := c.route
	if mux, ok := next.(*http.ServeMux); ok && lookup == nil {
		lookup = func(r *http.Request) string {
			_, pattern := mux.Handler(r)
			return pattern
		}
	}
	h := next
	if c.credentials != nil {
		h = c.credentials(h)
	}
	if c.limiter != nil {
		h = c.limiter.Middleware(c.throttleOpts...)(h)
	}
	if c.resolver != nil {
		h = tenant.Middleware(c.resolver)(h)
	}
	if c.verifier != nil {
		h = authz.Middleware(c.verifier, c.authzOpts...)(h)
	}
	if c.recorder != nil {
		h = meter.Middleware(c.recorder)(h)
	}
	if c.logger != nil {
		h = logging.AccessLog(c.logger, c.accessOpts...)(h)
	}
	var routeLookup *request.RouteLookup // the same for every request
	if lookup != nil {
		routeLookup = &request.RouteLookup{Find: lookup, Always: c.route != nil}
	}
	stack := request.NewHandler(request.Stack, h, func(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler) {
		if routeLookup != nil {
			st.SetRouteLookup(routeLookup)
		}
		defer annotate(st)
		next.ServeHTTP(w, r)
	})
	if len(c.bypass) == 0 {
		return stack
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.bypass[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		stack.ServeHTTP(w, r)
	})
}
