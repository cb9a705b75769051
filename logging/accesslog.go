package logging

import (
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tenancykit/tenancy/internal/clientip"
	"github.com/tenancykit/tenancy/internal/request"
	"go.opentelemetry.io/otel/trace"
)

// accessKeys are the keys of an access line's own fields.
var accessKeys = [...]string{KeyMethod, KeyRoute, KeyStatus, KeyBytes, KeyDurationMS, KeyRemoteIP, KeyRejectedBy, KeyRejectReason, KeyRejectDetail}

// Keys the access log adds to the schema.
const (
	KeyMethod       = "method"
	KeyRoute        = "route"
	KeyStatus       = "status"
	KeyBytes        = "bytes"
	KeyDurationMS   = "duration_ms"
	KeyRemoteIP     = "remote_ip"
	KeyRejectedBy   = "rejected_by"
	KeyRejectReason = "reject_reason"
	KeyRejectDetail = "reject_detail"
)

// AccessOption configures [AccessLog].
type AccessOption func(*accessConfig)

type accessConfig struct {
	clients       clientip.Resolver
	proxies       bool
	clientLevel   slog.Level
	header        string
	auditor       *Auditor
	auditExplicit bool
	noTrace       bool
	fallback      *Auditor
	now           func() time.Time // a test's clock; nil: the request's start and the monotonic clock
}

// WithTrustedProxies believes X-Forwarded-For from these networks when
// finding remote_ip. Default: the connection's peer address.
func WithTrustedProxies(p ...netip.Prefix) AccessOption {
	return func(c *accessConfig) { c.clients, c.proxies = clientip.New(p), len(p) > 0 }
}

// WithClientErrorLevel sets the level of 4xx lines. Default slog.LevelWarn;
// 5xx lines are errors, except a refusal a layer of the stack decided (a
// 503 from the throttle while its store is away), which is at this level
// too; the rest info.
func WithClientErrorLevel(l slog.Level) AccessOption {
	return func(c *accessConfig) { c.clientLevel = l }
}

// WithRequestIDHeader names the header that carries the request ID in and
// out. Default "X-Request-ID".
func WithRequestIDHeader(name string) AccessOption {
	return func(c *accessConfig) { c.header = http.CanonicalHeaderKey(name) }
}

// WithoutTraceContext stops the access log from giving a request without
// a span trace IDs of its own. Default: a request whose context has no
// span (no tracing middleware ran before) continues the trace of its
// incoming W3C traceparent header, or starts one, with a span ID of its
// own, so that every line it logs, here and in the services it calls
// through tenant.Transport, shares one trace_id. Nothing is exported and
// no span is put in the context, so a tracer inside the stack samples as
// if the access log were not there: it is correlation for logs, not
// tracing.
func WithoutTraceContext() AccessOption { return func(c *accessConfig) { c.noTrace = true } }

// WithAuditor sends the audit events of refused requests (authz denials)
// and, given to [MessageLog], of refused messages to a; nil turns them
// off. Default: the auditor set with [SetDefaultAuditor], else the access
// log's (the message log's) own logger.
func WithAuditor(a *Auditor) AccessOption {
	return func(c *accessConfig) { c.auditor, c.auditExplicit = a, true }
}

// AccessLog returns middleware that writes one line per request to logger
// when the request ends, panics included: method, route, status, bytes,
// duration_ms, remote_ip and request_id, with the tenant and the refusal
// of the layers inside (tenant.Reject) — a 401 or 429 line names the
// tenant whenever it was known, and who refused the request and why.
//
// A valid incoming request ID (1 to 128 characters of letters, digits and
// "-._:=") is kept, any other is replaced by a random one; either way it is
// echoed in the response and put in the context for every line the
// request logs. The wrapped ResponseWriter keeps http.Flusher, Hijacker and
// the writer's other optional interfaces.
//
// It belongs outermost, so that it sees every refusal (tenancy.New wires
// that order); wrapped around a layer that belongs outside it, it panics
// naming the fix, and a wrong order that only shows at run time is
// reported once.
func AccessLog(logger *slog.Logger, opts ...AccessOption) func(http.Handler) http.Handler {
	if logger == nil {
		panic("logging: AccessLog needs a logger")
	}
	c := accessConfig{clientLevel: slog.LevelWarn, header: "X-Request-Id"}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	// A logger on a Handler without groups takes the line straight from
	// here: the access log adds the context's fields itself, instead of
	// the Handler copying the record to add them.
	ours, _ := logger.Handler().(*Handler)
	if ours != nil && (len(ours.groups) > 0 || ours.opts.redactor.hasSensitiveKey(accessKeys[:])) {
		ours = nil // the Handler's own path: groups, or a key to redact
	}
	// With no auditor named or set as default, audit events go where the
	// access lines go, not to slog.Default.
	c.fallback = NewAuditor(logger.Handler())
	return func(next http.Handler) http.Handler {
		return request.NewHandler(request.AccessLog, next, func(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler) {
			// The request's start, read once by the first layer for all of
			// them; a test's clock reads its own.
			start := st.Start()
			if c.now != nil {
				start = c.now()
			}
			// The names are in canonical form: the header map is read
			// without Get and Values spelling them again.
			var id string
			if ids := r.Header[c.header]; len(ids) == 1 && validRequestID(ids[0]) {
				id = ids[0]
			}
			traced := !c.noTrace && !trace.SpanContextFromContext(r.Context()).IsValid()
			if traced {
				newTraceIDs(&st.Info, firstValue(r.Header["Traceparent"]))
			}
			// A new request ID and the text of the trace IDs share one
			// allocation.
			var buf [requestIDLen + hexIDsLen]byte
			n := 0
			if id == "" {
				putRequestID((*[requestIDLen]byte)(buf[:]))
				n = requestIDLen
			}
			if traced {
				putHexIDs((*[hexIDsLen]byte)(buf[n:]), st.Info.TraceID, st.Info.SpanID)
				n += hexIDsLen
			}
			if n > 0 {
				text := string(buf[:n])
				if id == "" {
					id, text = text[:requestIDLen], text[requestIDLen:]
				}
				if traced {
					st.Info.SetTraceText(text)
				}
			}
			st.Info.ID, st.Info.Header[0] = id, id
			w.Header()[c.header] = st.Info.Header[:]
			defer func() {
				p := recover()
				if p != nil && p != http.ErrAbortHandler && !st.Response.Sent() {
					st.Response.SetStatus(http.StatusInternalServerError)
				}
				c.log(logger, ours, r, st, start)
				if p != nil {
					panic(p)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

func (c *accessConfig) log(logger *slog.Logger, ours *Handler, r *http.Request, st *request.State, start time.Time) {
	ctx := r.Context()
	status := st.Response.Status()
	if status == 0 {
		status = http.StatusOK
	}
	// A refusal a layer decided (a 503 while the throttle's store is away,
	// say) is logged at the client-error level: the layer reports its
	// cause once, and a line per refused request at ERROR would drown the
	// errors of the service.
	rej := st.Rejection()
	level := slog.LevelInfo
	switch {
	case status >= 500 && rej.By == "":
		level = slog.LevelError
	case status >= 400:
		level = c.clientLevel
	}
	// The tenant is in the request's state, which ctx is or carries: the
	// level and the handler's fields find it there.
	enabled := logger.Enabled(ctx, level)
	if !enabled && c.auditorFor() == nil {
		return
	}
	route := st.Route(r)
	var end time.Time
	if c.now != nil {
		end = c.now()
	} else {
		end = start.Add(time.Since(start)) // one monotonic reading
	}
	var buf [24]slog.Attr
	attrs := append(buf[:0],
		slog.String(KeyMethod, r.Method),
		slog.String(KeyRoute, route),
		slog.Int(KeyStatus, status),
		slog.Int64(KeyBytes, st.Response.Bytes()),
		slog.Float64(KeyDurationMS, float64(end.Sub(start).Microseconds())/1000),
		slog.String(KeyRemoteIP, c.remoteIP(r)),
	)
	if ours == nil {
		attrs = appendContext(attrs, ctx, nil)
	}
	if rej.By != "" {
		attrs = append(attrs, slog.String(KeyRejectedBy, rej.By), slog.String(KeyRejectReason, rej.Reason))
		if rej.Detail != "" {
			attrs = append(attrs, slog.String(KeyRejectDetail, rej.Detail))
		}
	}
	switch {
	case !enabled:
	case ours != nil && !looksLikeJWT(r.Method):
		// What Handler.Handle would add, in its order, to a line with
		// nothing to redact: the method is the only value here the client
		// wrote (a route is a pattern, remote_ip an address), and none of
		// the keys is one the Handler redacts.
		ours.handlePlain(ctx, end, level, "request", attrs)
	default:
		logger.LogAttrs(ctx, level, "request", attrs...)
	}

	if rej.By == "authz" {
		if a := c.auditorFor(); a != nil {
			audit := []slog.Attr{
				slog.String(KeyMethod, r.Method),
				slog.String(KeyRejectReason, rej.Reason),
				slog.Int(KeyStatus, rej.Status),
				slog.String(KeyRemoteIP, c.remoteIP(r)),
			}
			if rej.Detail != "" {
				audit = append(audit, slog.String(KeyRejectDetail, rej.Detail))
			}
			a.Audit(ctx, "authorize", route, OutcomeDenied, audit...)
		}
	}
}

func (c *accessConfig) auditorFor() *Auditor {
	if c.auditExplicit {
		return c.auditor
	}
	if a := defaultAuditor.Load(); a != nil {
		if a.h == nil {
			return nil // turned off with SetDefaultAuditor(nil)
		}
		return a
	}
	return c.fallback
}

// remoteIP is the client address for the log line. With no trusted
// proxy it is the peer's host, cut from RemoteAddr without parsing it.
func (c *accessConfig) remoteIP(r *http.Request) string {
	if !c.proxies {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil && host != "" && strings.IndexByte(host, '%') < 0 {
			return host
		}
	}
	a := c.clients.ClientIP(r)
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// requestIDLen is the length of the request IDs the access log makes.
const requestIDLen = 26

// newRequestID returns a new request ID (see putRequestID).
func newRequestID() string {
	var b [requestIDLen]byte
	putRequestID(&b)
	return string(b[:])
}

// putRequestID writes a new request ID into b: 26 characters of base32
// (RFC 4648, as crypto/rand's Text) from 130 random bits. A request ID
// correlates lines and is no secret, so it comes from math/rand/v2's
// generator (ChaCha8, seeded by the system), which takes a few nanoseconds
// where crypto/rand takes a system call's worth.
func putRequestID(b *[requestIDLen]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	// 12 characters of 5 bits from each of two words, 2 from a third.
	x := rand.Uint64()
	for i := range 12 {
		b[i] = alphabet[x&31]
		x >>= 5
	}
	x = rand.Uint64()
	for i := 12; i < 24; i++ {
		b[i] = alphabet[x&31]
		x >>= 5
	}
	x = rand.Uint64()
	b[24], b[25] = alphabet[x&31], alphabet[x>>5&31]
}

// firstValue returns the first of a header's values, as Header.Get does.
func firstValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

func validRequestID(id string) bool {
	// A token sent as a request ID would be echoed and logged: refused.
	if len(id) == 0 || len(id) > 128 || looksLikeJWT(id) {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(isB64URL(c) || c == '.' || c == ':' || c == '=') { // = ends API Gateway's HTTP API IDs
			return false
		}
	}
	return true
}
