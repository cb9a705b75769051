package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// MiddlewareOption configures [Middleware]. A nil MiddlewareOption is
// ignored, and an option given its zero value leaves the default in place.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	realm        string
	queryParam   string
	optional     bool
	errorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// WithRealm sets the realm named in WWW-Authenticate. Default none; ""
// means none.
func WithRealm(realm string) MiddlewareOption {
	return func(c *middlewareConfig) { c.realm = realm }
}

// WithQueryToken also accepts a token in the query parameter name, for
// clients that cannot set headers (browser EventSource, WebSocket). Default:
// a request with an access_token query parameter is refused, because query
// strings end up in access logs and browser history (RFC 6750 §5.3); ""
// means the default.
func WithQueryToken(name string) MiddlewareOption {
	return func(c *middlewareConfig) { c.queryParam = name }
}

// WithCredentialsOptional lets requests without any Authorization header
// through without a tenant, for routes that serve the public too; an
// invalid token is still refused. Default: a token is required.
func WithCredentialsOptional() MiddlewareOption {
	return func(c *middlewareConfig) { c.optional = true }
}

// WithErrorHandler replaces how a refused request is answered. err wraps
// one of the package's Err... sentinels. Default, also for nil: [WriteError]
// (with the realm of [WithRealm]).
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) MiddlewareOption {
	return func(c *middlewareConfig) { c.errorHandler = h }
}

// Middleware returns middleware that verifies the request's bearer token
// with tv (a *Verifier for one issuer, *Issuers for several), puts the tenant it names in the request context (see
// [tenant.FromContext]), and refuses the request with 401 and a problem
// document otherwise, recording the refusal ([tenant.Reject]) for the
// access log and the meter outside. The verified token is kept in the
// context too ([tenant.TokenFromContext]), for [tenant.Transport] to
// forward to downstream services.
//
// It belongs inside logging.AccessLog and meter.Middleware and outside the
// throttle (tenancy.New wires that order); wrapped around one of the
// first two, or inside the throttle, it panics naming the fix, and a wrong
// order that only shows at run time is reported once.
//
// The token is read from one Authorization header with the Bearer scheme
// (case-insensitive). Two Authorization headers, a token in the query
// string (its parameters read as url.Values reads them, escapes decoded),
// or a token over the size limit are refused before parsing. When a tenant
// is in the context already (tenant.Middleware outside, resolving a path
// or a subdomain), a token for another tenant is refused with 403
// tenant-mismatch, whatever the order of the two middleware.
func Middleware(tv TokenVerifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if isNil(tv) {
		panic("authz: Middleware needs a TokenVerifier: a *Verifier or *Issuers")
	}
	// The package's own verifiers share a cached tenant instead of
	// copying it.
	v, ok := tv.(verifier)
	if !ok {
		v = foreign{tv}
	}
	c := middlewareConfig{}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.errorHandler == nil {
		realm := c.realm
		c.errorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, err, realm)
		}
	}
	return func(next http.Handler) http.Handler {
		return request.NewHandler(request.Authz, next, func(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler) {
			token, err := bearerToken(r, c.queryParam)
			if err != nil {
				if errors.Is(err, ErrNoToken) && c.optional {
					next.ServeHTTP(w, r)
					return
				}
				c.errorHandler(w, r, err)
				return
			}
			t, err := v.verify(r.Context(), token, st.Start())
			if err != nil {
				c.errorHandler(w, r, err)
				return
			}
			// A resolver outside (a path, a subdomain, a gateway's header)
			// may have named a tenant already: the token must agree.
			if cur, ok := tenant.FromContext(r.Context()); ok && cur.ID != t.ID {
				tenant.Refuse(w, r, "authz", tenant.ErrMismatch)
				return
			}
			st.SetTenant(t, token)
			next.ServeHTTP(w, r)
		})
	}
}

// foreign adapts a TokenVerifier of another package.
type foreign struct{ tv TokenVerifier }

func (f foreign) verify(ctx context.Context, token string, _ time.Time) (*tenant.Tenant, error) {
	t, err := f.tv.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// isNil reports whether tv is nil or a nil pointer of the package's.
func isNil(tv TokenVerifier) bool {
	switch v := tv.(type) {
	case nil:
		return true
	case *Verifier:
		return v == nil
	case *Issuers:
		return v == nil
	}
	return false
}

// queryHasToken reports whether a raw query has an access_token parameter
// as url.ParseQuery reads it: "access%5Ftoken" and "%61ccess_token" are
// access_token too. A query without the name and without an escape needs
// no parsing.
func queryHasToken(raw string) bool {
	if raw == "" || !strings.Contains(raw, "access_token") && strings.IndexByte(raw, '%') < 0 {
		return false
	}
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != "access_token" {
			continue
		}
		// ParseQuery drops a pair whose value does not unescape.
		if _, err := url.QueryUnescape(v); err == nil {
			return true
		}
	}
	return false
}

func bearerToken(r *http.Request, queryParam string) (string, error) {
	// The name is in canonical form: the map is read without Values
	// spelling it again.
	values := r.Header["Authorization"]
	var query string
	if queryParam != "" {
		query = r.URL.Query().Get(queryParam)
	} else if queryHasToken(r.URL.RawQuery) {
		return "", ErrQueryToken
	}
	switch {
	case len(values) > 1:
		return "", ErrMalformedRequest
	case len(values) == 1 && query != "":
		return "", ErrMalformedRequest // RFC 6750 §2: one method per request
	case len(values) == 0 && query != "":
		return query, nil
	case len(values) == 0:
		return "", ErrNoToken
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMalformedRequest
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.IndexByte(token, ' ') >= 0 {
		return "", ErrMalformedRequest
	}
	return token, nil
}

// WriteError answers a request refused by authz: 401 with a
// WWW-Authenticate challenge (RFC 6750) and a problem document, or 403 for
// [ErrForbidden]. The client is told a fixed description of the cause,
// never the error's text. It also records the rejection ([tenant.Reject])
// for the access log and the meter.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, err, "")
}

func writeError(w http.ResponseWriter, r *http.Request, err error, realm string) {
	if errors.Is(err, ErrForbidden) {
		writeForbidden(w, r, err)
		return
	}
	f := failureOf(err)
	if f.status == http.StatusServiceUnavailable {
		// Not the client's fault: no challenge, a time to come back.
		tenant.Reject(r.Context(), tenant.Rejection{By: "authz", Reason: f.reason, Status: f.status, Detail: detailFor(err)})
		tenant.WriteProblem(w, tenant.Problem{
			Type:       tenant.ProblemType("authz-unavailable"),
			Title:      "Service unavailable",
			Status:     f.status,
			Detail:     f.description,
			RetryAfter: keysRetryAfter,
		})
		return
	}
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	if realm != "" {
		b.WriteString(sep + `realm="` + quoteSafe(realm) + `"`)
		sep = ", "
	}
	if f.code != "" {
		b.WriteString(sep + `error="` + f.code + `", error_description="` + f.description + `"`)
	}
	w.Header().Set("WWW-Authenticate", b.String())
	tenant.Reject(r.Context(), tenant.Rejection{By: "authz", Reason: f.reason, Status: f.status, Detail: detailFor(err)})
	tenant.WriteProblem(w, tenant.Problem{
		Type:   tenant.ProblemType("unauthorized"),
		Title:  "Unauthorized",
		Status: f.status,
		Detail: f.description,
	})
}

// maxDetail bounds the detail of a refusal in the logs: an error may
// quote a key ID, which the client chose.
const maxDetail = 200

// detailOf is the refusal's cause for the access line and the audit
// event: the error's text, which never holds a token or a claim's value,
// without control characters and at most maxDetail bytes.
func detailOf(err error) string {
	d := strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, err.Error())
	if len(d) > maxDetail {
		d = strings.ToValidUTF8(d[:maxDetail], "") + "..."
	}
	return d
}

// keysRetryAfter is the Retry-After, in seconds, of a request refused
// with ErrKeysUnavailable.
const keysRetryAfter = 5

func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
