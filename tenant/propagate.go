package tenant

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/tenancykit/tenancy/internal/propagate"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
)

// BaggageKey is the OpenTelemetry baggage member [Transport] sets to the
// tenant ID, for tracing backends and downstream logs. It is information,
// never authority: no resolver of this module reads it.
const BaggageKey = string(IDKey)

// The OpenTelemetry attribute keys of the tenant, the same on spans,
// metrics, the log bridge and in the baggage. OpenTelemetry's semantic
// conventions have none for a tenant; these follow their naming.
const (
	// IDKey names the tenant ID: on spans and in the baggage, and on
	// metrics of usage (never on request metrics, where a label per
	// tenant would be one time series per tenant).
	IDKey attribute.Key = "tenant.id"
	// TierKey names the tenant's tier, on spans and metrics.
	TierKey attribute.Key = "tenant.tier"
	// RejectedByKey and RejectReasonKey name a refusal on a span, with
	// the values of [Rejection] (the access log's rejected_by and
	// reject_reason). The semantic conventions' error.type is for
	// failures, not for requests refused by policy.
	RejectedByKey   attribute.Key = "tenancy.rejected_by"
	RejectReasonKey attribute.Key = "tenancy.reject_reason"
)

// TokenFromContext returns the bearer token the tenant in ctx was verified
// from, if any: authz.Middleware keeps it for [Transport]. Never log it.
func TokenFromContext(ctx context.Context) (string, bool) {
	_, tok := fromContext(ctx)
	return tok, tok != ""
}

// ErrNoCredential is returned by [Transport] for a request whose context
// has neither a caller's token nor a service token.
var ErrNoCredential = errors.New("tenant: no token to forward")

// Transport is an http.RoundTripper for calls from one service to another
// on behalf of the tenant of the request context: the downstream service
// verifies the same token and so acts for the same tenant, with the same
// user. It also propagates the W3C trace context and puts the tenant ID in
// the OpenTelemetry baggage. The outgoing request is a copy; the caller's
// is never changed.
//
// A token goes only where the request was meant to go. It is sent to the
// origin (scheme, host and port) of the request as the caller built it,
// never to the target of a redirect to another origin: http.Client calls
// RoundTrip again for every hop, and a downstream that answers 302 with
// another host must not receive the caller's token. When Hosts is set, the
// token goes only to those hosts, whatever the caller built (a webhook URL
// called through the same client gets none). A request the token may not
// go to is sent without one.
//
// The zero Transport forwards the caller's token over
// http.DefaultTransport. A Transport is safe for concurrent use.
type Transport struct {
	// Base sends the request. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// ServiceToken, when set, supplies the token to send instead of the
	// caller's: a client-credentials token of this service that still
	// names the tenant. Nil means forward the caller's token.
	ServiceToken func(ctx context.Context) (string, error)
	// AllowAnonymous sends requests with no token at all when the context
	// has none. Default false: such a request fails with ErrNoCredential,
	// since a tenant-less call to a tenant-aware service is a bug.
	AllowAnonymous bool
	// RequestID, when set, reads the request ID from the context to send
	// as X-Request-ID, so both services log the same one; use
	// logging.RequestIDFromContext. Nil sends none (the trace context
	// still ties the services' lines together).
	RequestID func(ctx context.Context) (string, bool)
	// Hosts, when not empty, are the only hosts a token is sent to: each
	// "host" (any port) or "host:port", compared case-insensitively.
	// Empty means the origin each request was built for.
	Hosts []string
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	out := req.Clone(ctx)
	if out.Header.Get("Authorization") == "" && t.tokenMayGo(req) {
		tok, err := t.token(ctx)
		switch {
		case err != nil:
			closeBody(req)
			return nil, err
		case tok != "":
			out.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	if t.RequestID != nil && out.Header.Get("X-Request-Id") == "" {
		if id, ok := t.RequestID(ctx); ok {
			out.Header.Set("X-Request-Id", id)
		}
	}
	var tenantID string
	if tn, ok := FromContext(ctx); ok {
		tenantID = tn.ID
	}
	propagate.Inject(ctx, tenantID, propagation.HeaderCarrier(out.Header))
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(out)
}

// tokenMayGo reports whether a token may be sent with req: req goes to the
// origin the first request of its redirect chain was built for, and to one
// of Hosts when they are set.
func (t *Transport) tokenMayGo(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	if first != req && !sameOrigin(first.URL, req.URL) {
		return false
	}
	if len(t.Hosts) == 0 {
		return true
	}
	for _, h := range t.Hosts {
		if strings.EqualFold(h, req.URL.Hostname()) || strings.EqualFold(h, hostPort(req.URL)) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (RFC 6454), default ports included.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(hostPort(a), hostPort(b))
}

// hostPort returns u's host with its port, the scheme's default when u has
// none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if strings.EqualFold(u.Scheme, "https") {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func (t *Transport) token(ctx context.Context) (string, error) {
	if t.ServiceToken != nil {
		return t.ServiceToken(ctx)
	}
	if tok, ok := TokenFromContext(ctx); ok {
		return tok, nil
	}
	if t.AllowAnonymous {
		return "", nil
	}
	return "", ErrNoCredential
}

// closeBody honours RoundTrip's contract to close the body on error.
func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}
