package logging

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/tenancykit/tenancy/internal/clientip"
	"github.com/tenancykit/tenancy/tenant"
)

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
)

// AccessOption configures [AccessLog].
type AccessOption func(*accessConfig)

type accessConfig struct {
	route         func(*http.Request) string
	clients       clientip.Resolver
	proxies       bool
	clientLevel   slog.Level
	header        string
	auditor       *Auditor
	auditExplicit bool
	noTrace       bool
	fallback      *Auditor
	now           func() time.Time
}

// WithRoute says how to find a request's route pattern for the "route"
// field. Default: the pattern the router set, which the library's
// middleware between it and the access log record in the request's
// tenant.Record (a request refused before the router has none). With
// [MuxRoute] (an http.ServeMux) or chi's RouteContext, refused requests
// get their route too, for the cost of routing each request again.
func WithRoute(f func(*http.Request) string) AccessOption {
	return func(c *accessConfig) { c.route = f }
}

// MuxRoute returns the route function for mux: the pattern mux would
// route r to.
func MuxRoute(mux *http.ServeMux) func(*http.Request) string {
	return func(r *http.Request) string {
		_, pattern := mux.Handler(r)
		return pattern
	}
}

// WithTrustedProxies believes X-Forwarded-For from these networks when
// finding remote_ip. Default: the connection's peer address.
func WithTrustedProxies(p ...netip.Prefix) AccessOption {
	return func(c *accessConfig) { c.clients, c.proxies = clientip.New(p), len(p) > 0 }
}

// WithClientErrorLevel sets the level of 4xx lines. Default slog.LevelWarn;
// 5xx lines are errors and the rest info.
func WithClientErrorLevel(l slog.Level) AccessOption {
	return func(c *accessConfig) { c.clientLevel = l }
}

// WithRequestIDHeader names the header that carries the request ID in and
// out. Default "X-Request-ID".
func WithRequestIDHeader(name string) AccessOption {
	return func(c *accessConfig) { c.header = http.CanonicalHeaderKey(name) }
}

// WithoutTraceContext stops the access log from giving a request without
// a span its own trace context. Default: a request whose context has no
// span (no tracing middleware ran before) continues the trace of its
// incoming W3C traceparent header, or starts one, with a span ID of its
// own, so that every line it logs, here and in the services it calls
// through tenant.Transport, shares one trace_id. Nothing is exported: it
// is correlation for logs, not tracing.
func WithoutTraceContext() AccessOption { return func(c *accessConfig) { c.noTrace = true } }

// WithAuditor sends the audit events of refused requests (authz denials)
// to a; nil turns them off. Default: the auditor set with
// [SetDefaultAuditor], else the access log's own logger.
func WithAuditor(a *Auditor) AccessOption {
	return func(c *accessConfig) { c.auditor, c.auditExplicit = a, true }
}

// AccessLog returns middleware that writes one line per request to logger
// when the request ends, panics included: method, route, status, bytes,
// duration_ms, remote_ip and request_id, with the tenant and the refusal
// that inner middleware recorded in the request's [tenant.Record] — a 401
// or 429 line names the tenant whenever it was known.
//
// A valid incoming request ID (1 to 128 characters of letters, digits and
// "-._:") is kept, any other is replaced by a random one; either way it is
// echoed in the response and put in the context for every line the
// request logs. The wrapped ResponseWriter keeps http.Flusher, Hijacker and
// the writer's other optional interfaces.
func AccessLog(logger *slog.Logger, opts ...AccessOption) func(http.Handler) http.Handler {
	if logger == nil {
		panic("logging: AccessLog needs a logger")
	}
	c := accessConfig{clientLevel: slog.LevelWarn, header: "X-Request-Id", now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	_, ours := logger.Handler().(*Handler)
	// With no auditor named or set as default, audit events go where the
	// access lines go, not to slog.Default.
	c.fallback = NewAuditor(logger.Handler())
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := c.now()
			id := r.Header.Get(c.header)
			if !validRequestID(id) || len(r.Header.Values(c.header)) > 1 {
				id = rand.Text()
			}
			// One allocation for what this request needs of its own: the
			// writer's counts, the request state the context carries and
			// the header value.
			m := new(metrics)
			m.hdr[0], m.rs.id = id, id
			w.Header()[c.header] = m.hdr[:]
			ctx := context.WithValue(r.Context(), requestIDKey{}, &m.rs)
			if !c.noTrace {
				ctx = ensureTraceContext(ctx, r.Header)
			}
			ctx, rec := tenant.NewRecordContext(ctx)

			rec.SetResponseMeter(&m.resp) // inner middleware read it instead of wrapping again
			hs := hookPool.Get().(*hookSet)
			hs.m = m
			ww := httpsnoop.Wrap(w, hs.hooks)
			r2 := r.WithContext(ctx)

			defer func() {
				p := recover()
				hs.m = nil
				hookPool.Put(hs)
				if p != nil && p != http.ErrAbortHandler && !m.wroteHeader {
					m.resp.WriteHeader(http.StatusInternalServerError)
				}
				c.log(logger, ours, r2, rec, m, start)
				if p != nil {
					panic(p)
				}
			}()
			next.ServeHTTP(ww, r2)
		})
	}
}

func (c *accessConfig) log(logger *slog.Logger, ours bool, r *http.Request, rec *tenant.Record, m *metrics, start time.Time) {
	ctx := r.Context()
	status := m.resp.Status()
	switch {
	case m.hijacked:
		status = http.StatusSwitchingProtocols
	case status == 0:
		status = http.StatusOK
	}
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case status >= 400:
		level = c.clientLevel
	}
	// The tenant is in rec, which ctx carries: the level and the handler's
	// fields find it there.
	if !logger.Enabled(ctx, level) && c.auditorFor() == nil {
		return
	}
	var route string
	if c.route != nil {
		route = c.route(r)
	} else {
		rec.SetRoute(r.Pattern) // when the router sat right inside
		route = rec.Route()
	}
	var buf [16]slog.Attr
	attrs := append(buf[:0],
		slog.String(KeyMethod, r.Method),
		slog.String(KeyRoute, route),
		slog.Int(KeyStatus, status),
		slog.Int64(KeyBytes, m.resp.Bytes()),
		slog.Float64(KeyDurationMS, float64(c.now().Sub(start).Microseconds())/1000),
		slog.String(KeyRemoteIP, c.remoteIP(r)),
	)
	if !ours {
		attrs = appendContext(attrs, ctx)
	}
	rej := rec.Rejection()
	if !rej.IsZero() {
		attrs = append(attrs, slog.String(KeyRejectedBy, rej.By), slog.String(KeyRejectReason, rej.Reason))
	}
	var notes [4]tenant.Note
	for _, n := range rec.AppendNotes(notes[:0]) {
		attrs = append(attrs, slog.Any(n.Key, n.Value))
	}
	logger.LogAttrs(ctx, level, "request", attrs...)

	if rej.By == "authz" {
		if a := c.auditorFor(); a != nil {
			a.Audit(ctx, "authorize", route, OutcomeDenied,
				slog.String(KeyMethod, r.Method),
				slog.String(KeyRejectReason, rej.Reason),
				slog.Int(KeyStatus, rej.Status),
				slog.String(KeyRemoteIP, c.remoteIP(r)))
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

func validRequestID(id string) bool {
	// A token sent as a request ID would be echoed and logged: refused.
	if len(id) == 0 || len(id) > 128 || looksLikeJWT(id) {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(isB64URL(c) || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// metrics is what the wrapped writer saw. resp is also the request's
// tenant.ResponseMeter.
type metrics struct {
	resp        tenant.ResponseMeter
	wroteHeader bool
	hijacked    bool
	rs          requestState
	hdr         [1]string
}

// hookSet is the writer hooks, built once and reused through hookPool:
// they act on whichever request's metrics m holds. Nothing that a request's
// context can reach is pooled.
type hookSet struct {
	m     *metrics
	hooks httpsnoop.Hooks
}

var hookPool = sync.Pool{New: func() any { return newHookSet() }}

func newHookSet() *hookSet {
	hs := &hookSet{}
	hs.hooks = httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			m := hs.m
			return func(code int) {
				next(code)
				if !m.wroteHeader && code >= 200 {
					m.resp.WriteHeader(code)
					m.wroteHeader = true
				}
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			m := hs.m
			return func(b []byte) (int, error) {
				n, err := next(b)
				m.wroteHeader = true
				m.resp.Wrote(int64(n))
				return n, err
			}
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			m := hs.m
			return func(src io.Reader) (int64, error) {
				n, err := next(src)
				m.wroteHeader = true
				m.resp.Wrote(n)
				return n, err
			}
		},
		Flush: func(next httpsnoop.FlushFunc) httpsnoop.FlushFunc {
			m := hs.m
			return func() {
				next()
				m.wroteHeader = true // a flush sends the header: 200 unless set
				m.resp.WriteHeader(http.StatusOK)
			}
		},
		Hijack: func(next httpsnoop.HijackFunc) httpsnoop.HijackFunc {
			m := hs.m
			return func() (net.Conn, *bufio.ReadWriter, error) {
				conn, rw, err := next()
				if err == nil {
					m.hijacked = true
				}
				return conn, rw, err
			}
		},
	}
	return hs
}
