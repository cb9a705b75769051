package logging_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
	"go.opentelemetry.io/otel/trace"
)

// accessClock makes every request last 1.5 ms.
// accessClock makes lines deterministic: a stepping clock, and no trace
// IDs of the access log's own (TestAccessLogTraceContext covers those).
func accessClock() logging.AccessOption {
	clock := logging.WithAccessClock(stepClock(testTime, 1500*time.Microsecond))
	return func(c *logging.AccessConfig) {
		clock(c)
		logging.WithoutTraceContext()(c)
	}
}

// serve runs one request through h and returns the response.
func serve(h http.Handler, req *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// newRequest returns a request from 192.0.2.10 with the given request ID
// header, none when id is empty.
func newRequest(method, target, id string) *http.Request {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = "192.0.2.10:51234"
	if id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	return req
}

func ordersMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "hello")
	})
	return mux
}

// requestFields is an access log line without the context fields.
func requestFields(level, method, route string, status, bytes int) map[string]any {
	return map[string]any{
		"level": level, "msg": "request",
		"method": method, "route": route, "status": float64(status), "bytes": float64(bytes),
		"duration_ms": 1.5, "remote_ip": "192.0.2.10",
	}
}

func TestAccessLogPanicsWithoutLogger(t *testing.T) {
	defer func() {
		if s, _ := recover().(string); !strings.HasPrefix(s, "logging: ") {
			t.Errorf("panic = %q, want the logging: prefix", s)
		}
	}()
	logging.AccessLog(nil)
}

func mustStack(t *testing.T, opts ...tenancy.Option) *tenancy.Stack {
	t.Helper()
	s, err := tenancy.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// copyKey is the context key of a middleware that copies the request.
type copyKey struct{}

func TestAccessLogLine(t *testing.T) {
	copyRequest := func(next http.Handler) http.Handler { // as authz does
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), copyKey{}, 1)))
		})
	}
	created := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "hello")
	})
	tests := []struct {
		name   string
		build  func(logger *slog.Logger) http.Handler
		target string
		route  string
		status int
		bytes  int
	}{
		{
			name: "around the mux, route from the request's pattern",
			build: func(l *slog.Logger) http.Handler {
				return logging.AccessLog(l, accessClock())(ordersMux())
			},
			target: "/orders/42", route: "POST /orders/{id}", status: 201, bytes: 5,
		},
		{
			name: "in a stack whose route lookup asks the mux, behind a middleware that copies the request",
			build: func(l *slog.Logger) http.Handler {
				mux := ordersMux()
				return mustStack(t, tenancy.WithAccessLog(l, accessClock()), tenancy.WithRoute(func(r *http.Request) string {
					_, p := mux.Handler(r)
					return p
				})).Wrap(copyRequest(mux))
			},
			target: "/orders/42", route: "POST /orders/{id}", status: 201, bytes: 5,
		},
		{
			name: "no route behind a middleware that copies the request",
			build: func(l *slog.Logger) http.Handler {
				return logging.AccessLog(l, accessClock())(copyRequest(ordersMux()))
			},
			target: "/orders/42", route: "", status: 201, bytes: 5,
		},
		{
			name: "inside the mux around one route",
			build: func(l *slog.Logger) http.Handler {
				mux := http.NewServeMux()
				mux.Handle("POST /orders/{id}", logging.AccessLog(l, accessClock())(created))
				return mux
			},
			target: "/orders/42", route: "POST /orders/{id}", status: 201, bytes: 5,
		},
		{
			name: "in a stack around the mux, no route matches",
			build: func(l *slog.Logger) http.Handler {
				return mustStack(t, tenancy.WithAccessLog(l, accessClock())).Wrap(ordersMux())
			},
			target: "/nowhere", route: "", status: 404, bytes: len("404 page not found\n"),
		},
		{
			name: "in a stack with a route function, around no router",
			build: func(l *slog.Logger) http.Handler {
				return mustStack(t, tenancy.WithAccessLog(l, accessClock()), tenancy.WithRoute(func(*http.Request) string { return "orders" })).Wrap(created)
			},
			target: "/orders/42", route: "orders", status: 201, bytes: 5,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, buf := newLogger()
			serve(tc.build(logger), newRequest("POST", tc.target, "req-abc"))
			level := "INFO"
			if tc.status >= 400 {
				level = "WARN"
			}
			want := with(requestFields(level, "POST", tc.route, tc.status, tc.bytes), "request_id", "req-abc")
			if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAccessLogRemoteIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"peer", nil, "192.0.2.10:1234", nil, "192.0.2.10"},
		{"IPv6 peer", nil, "[2001:db8::1]:1234", nil, "2001:db8::1"},
		{"forwarded header without trusted proxies", nil, "10.0.0.5:1234", []string{"203.0.113.9"}, "10.0.0.5"},
		{"through a trusted proxy", proxies, "10.0.0.5:1234", []string{"203.0.113.9"}, "203.0.113.9"},
		{"through two trusted proxies", proxies, "10.0.0.5:1234", []string{"203.0.113.9, 10.1.1.1"}, "203.0.113.9"},
		{"spoofed entry to the left", proxies, "10.0.0.5:1234", []string{"198.51.100.66, 203.0.113.9"}, "203.0.113.9"},
		{"spoofed header line", proxies, "10.0.0.5:1234", []string{"198.51.100.66", "203.0.113.9"}, "203.0.113.9"},
		{"forwarded header from an untrusted peer", proxies, "192.0.2.10:1234", []string{"203.0.113.9"}, "192.0.2.10"},
		{"unparsable peer", nil, "pipe", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, buf := newLogger()
			h := logging.AccessLog(logger, logging.WithTrustedProxies(tc.trusted...))(http.NotFoundHandler())
			req := newRequest("GET", "/", "")
			req.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			serve(h, req)
			if got := decodeOne(t, buf.String())["remote_ip"]; got != tc.want {
				t.Errorf("remote_ip = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAccessLogRequestID(t *testing.T) {
	long := strings.Repeat("a", 128)
	tests := []struct {
		name   string
		header string   // the request ID header; default X-Request-ID
		values []string // incoming values
		keep   bool
	}{
		{name: "valid", values: []string{"req-abc_1.2:3"}, keep: true},
		{name: "128 characters", values: []string{long}, keep: true},
		{name: "uuid", values: []string{"0b6f9a55-3c9e-4c3a-9c1e-8f9b6a6f0d2e"}, keep: true},
		{name: "API Gateway HTTP API", values: []string{"LV7fzho-PHcEJPw="}, keep: true},
		{name: "missing"},
		{name: "empty", values: []string{""}},
		{name: "too long", values: []string{long + "a"}},
		{name: "space", values: []string{"req abc"}},
		{name: "quote", values: []string{`req"abc`}},
		{name: "slash", values: []string{"req/abc"}},
		{name: "non-ASCII", values: []string{"réq"}},
		{name: "two headers", values: []string{"req-1", "req-2"}},
		{name: "custom header", header: "X-Correlation-ID", values: []string{"corr-1"}, keep: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, buf := newLogger()
			header := "X-Request-ID"
			var opts []logging.AccessOption
			if tc.header != "" {
				header = tc.header
				opts = append(opts, logging.WithRequestIDHeader(strings.ToLower(header)))
			}
			var inCtx string
			inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx, _ = logging.RequestIDFromContext(r.Context())
				logger.InfoContext(r.Context(), "inner")
			})
			req := newRequest("GET", "/", "")
			for _, v := range tc.values {
				req.Header.Add(header, v)
			}
			resp := serve(logging.AccessLog(logger, opts...)(inner), req)

			recs := decodeLines(t, buf.String())
			if len(recs) != 2 {
				t.Fatalf("got %d lines, want the handler's and the access log's", len(recs))
			}
			id, _ := recs[1]["request_id"].(string)
			if tc.keep && id != tc.values[0] {
				t.Errorf("request_id = %q, want the incoming %q", id, tc.values[0])
			}
			if !tc.keep {
				if len(id) != 26 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
					t.Errorf("request_id = %q, want a fresh 26-character ID", id)
				}
				for _, v := range tc.values {
					if id == v {
						t.Errorf("request_id = %q: the invalid incoming ID was kept", id)
					}
				}
			}
			if got := resp.Header.Values(header); len(got) != 1 || got[0] != id {
				t.Errorf("response %s = %q, want [%q]", header, got, id)
			}
			if inCtx != id {
				t.Errorf("request ID in the handler's context = %q, want %q", inCtx, id)
			}
			if got := recs[0]["request_id"]; got != id {
				t.Errorf("the handler's own line has request_id %q, want %q", got, id)
			}
		})
	}

	t.Run("fresh IDs differ", func(t *testing.T) {
		logger, _ := newLogger()
		h := logging.AccessLog(logger)(http.NotFoundHandler())
		a := serve(h, newRequest("GET", "/", "")).Header.Get("X-Request-ID")
		b := serve(h, newRequest("GET", "/", "")).Header.Get("X-Request-ID")
		if a == b || a == "" {
			t.Errorf("two requests got IDs %q and %q", a, b)
		}
	})
}

func TestAccessLogLevels(t *testing.T) {
	tests := []struct {
		status int
		opts   []logging.AccessOption
		want   string
	}{
		{status: 200, want: "INFO"},
		{status: 204, want: "INFO"},
		{status: 301, want: "INFO"},
		{status: 400, want: "WARN"},
		{status: 404, want: "WARN"},
		{status: 429, want: "WARN"},
		{status: 499, want: "WARN"},
		{status: 500, want: "ERROR"},
		{status: 503, want: "ERROR"},
		{status: 404, opts: []logging.AccessOption{logging.WithClientErrorLevel(slog.LevelInfo)}, want: "INFO"},
		{status: 429, opts: []logging.AccessOption{logging.WithClientErrorLevel(slog.LevelError)}, want: "ERROR"},
		{status: 500, opts: []logging.AccessOption{logging.WithClientErrorLevel(slog.LevelInfo)}, want: "ERROR"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status, tc.want), func(t *testing.T) {
			logger, buf := newLogger()
			h := logging.AccessLog(logger, tc.opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
			}))
			serve(h, newRequest("GET", "/", ""))
			rec := decodeOne(t, buf.String())
			if rec["level"] != tc.want || rec["status"] != float64(tc.status) {
				t.Errorf("level, status = %v, %v; want %s, %d", rec["level"], rec["status"], tc.want, tc.status)
			}
		})
	}

	t.Run("below the logger's level", func(t *testing.T) {
		buf := new(syncBuffer)
		logger := slog.New(logging.NewHandler(jsonHandler(buf), logging.WithLevels(logging.NewLevels(slog.LevelWarn))))
		h := logging.AccessLog(logger, logging.WithAuditor(nil))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/missing" {
				http.NotFound(w, r)
			}
		}))
		serve(h, newRequest("GET", "/ok", ""))
		serve(h, newRequest("GET", "/missing", ""))
		recs := decodeLines(t, buf.String())
		if len(recs) != 1 || recs[0]["status"] != 404.0 {
			t.Errorf("got %v, want only the 404 line", recs)
		}
	})

	t.Run("implicit 200", func(t *testing.T) {
		logger, buf := newLogger()
		h := logging.AccessLog(logger, accessClock())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}))
		serve(h, newRequest("GET", "/", "req-1"))
		want := with(requestFields("INFO", "GET", "", 200, 2), "request_id", "req-1")
		if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
			t.Errorf("line (-want +got):\n%s", diff)
		}
	})
}

// TestAccessLogContextFields checks the tenant an inner middleware
// recorded and the span of the request, with a logger built on a Handler
// and with a plain one.
func TestAccessLogContextFields(t *testing.T) {
	acme := mustTenant(t, "acme", "premium", "user-7")
	authn := func(next http.Handler) http.Handler { // what authz does
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requesttest.SetTenant(r.Context(), acme)
			next.ServeHTTP(w, r)
		})
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		name    string
		next    func(*syncBuffer) slog.Handler
		service bool // the handler adds service=orders
	}{
		{"tenancy handler", func(b *syncBuffer) slog.Handler { return logging.NewHandler(jsonHandler(b)) }, false},
		{"tenancy handler with attrs", func(b *syncBuffer) slog.Handler {
			return logging.NewHandler(jsonHandler(b)).WithAttrs([]slog.Attr{slog.String("service", "orders")})
		}, true},
		{"plain JSON handler", func(b *syncBuffer) slog.Handler {
			return jsonHandler(b).WithAttrs([]slog.Attr{slog.String("service", "orders")})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := new(syncBuffer)
			h := logging.AccessLog(slog.New(tc.next(buf)), accessClock())(authn(app))
			req := newRequest("GET", "/", "req-1")
			req = req.WithContext(trace.ContextWithSpanContext(req.Context(), spanContext(t)))
			serve(h, req)

			out := buf.String()
			got := decodeOne(t, out)
			want := requestFields("INFO", "GET", "", 200, 0)
			for k, v := range fullFields {
				want[k] = v
			}
			if tc.service {
				want["service"] = "orders"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
			keys := topLevelKeys(t, out)
			seen := map[string]bool{}
			for _, k := range keys {
				if seen[k] {
					t.Errorf("key %q appears twice: %s", k, out)
				}
				seen[k] = true
			}
		})
	}
}

// authzFixture is a service behind AccessLog, authz and throttle, with an
// issuer, an auditor and buffers for both streams.
type authzFixture struct {
	iss      *authztest.Issuer
	logs     *syncBuffer
	audits   *syncBuffer
	handler  http.Handler
	requests int
}

func newAuthzFixture(t *testing.T, iss *authztest.Issuer, opts ...logging.AccessOption) *authzFixture {
	t.Helper()
	f := &authzFixture{iss: iss, audits: new(syncBuffer)}
	limits := map[string]throttle.Limits{}
	for _, name := range tenant.DefaultTiers.Names() {
		limits[name] = throttle.Limits{Rate: 0.001, Burst: 1}
	}
	limiter, err := throttle.New(tenant.DefaultTiers, limits, throttle.WithClock(func() time.Time { return testTime }))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "[]") })
	mux.Handle("DELETE /orders/{id}", authz.RequireRole("admin")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	var logger *slog.Logger
	logger, f.logs = newLogger()
	auditor := logging.NewAuditor(jsonHandler(f.audits))
	base := []logging.AccessOption{logging.WithAuditor(auditor), accessClock()}
	f.handler = mustStack(t,
		tenancy.WithAccessLog(logger, append(base, opts...)...),
		tenancy.WithAuthz(iss.Verifier(t)),
		tenancy.WithThrottle(limiter),
	).Wrap(mux)
	return f
}

func (f *authzFixture) do(t *testing.T, method, target, token string) *http.Response {
	t.Helper()
	f.requests++
	req := newRequest(method, target, fmt.Sprint("req-", f.requests))
	req.Header.Set("Authorization", "Bearer "+token)
	return serve(f.handler, req)
}

func TestAccessLogAuthzAndThrottle(t *testing.T) {
	iss := authztest.Start(t)
	expired := iss.MustMint("acme", "premium", authztest.WithSubject("user-7"), authztest.WithExpiry(-time.Hour))
	valid := iss.MustMint("acme", "premium", authztest.WithSubject("user-7"))
	acmeFields := map[string]any{"tenant_id": "acme", "tenant_tier": "premium", "user_id": "user-7"}
	// The precise cause, for the logs alone.
	const (
		expiredDetail = "authz: token expired (token has invalid claims: token is expired)"
		roleDetail    = "This resource needs the role admin."
	)

	tests := []struct {
		name      string
		method    string
		target    string
		token     string
		requests  int // the last one is checked
		wantLine  map[string]any
		wantAudit map[string]any // nil: no audit record
	}{
		{
			name: "401 expired token: no tenant", method: "GET", target: "/orders", token: expired, requests: 1,
			wantLine: with(requestFields("WARN", "GET", "GET /orders", 401, -1),
				"request_id", "req-1", "rejected_by", "authz", "reject_reason", "expired", "reject_detail", expiredDetail),
			wantAudit: map[string]any{
				"level": "INFO", "msg": "audit", "log_type": "audit", "action": "authorize", "resource": "GET /orders",
				"outcome": "denied", "request_id": "req-1", "method": "GET", "reject_reason": "expired",
				"status": 401.0, "remote_ip": "192.0.2.10", "reject_detail": expiredDetail,
			},
		},
		{
			name: "403 missing role: names the tenant", method: "DELETE", target: "/orders/9", token: valid, requests: 1,
			wantLine: with(requestFields("WARN", "DELETE", "DELETE /orders/{id}", 403, -1),
				"request_id", "req-1", "rejected_by", "authz", "reject_reason", "role", "reject_detail", roleDetail),
			wantAudit: with(acmeFields,
				"level", "INFO", "msg", "audit", "log_type", "audit", "action", "authorize", "resource", "DELETE /orders/{id}",
				"outcome", "denied", "request_id", "req-1", "method", "DELETE", "reject_reason", "role",
				"status", 403.0, "remote_ip", "192.0.2.10", "reject_detail", roleDetail),
		},
		{
			name: "200 allowed", method: "GET", target: "/orders", token: valid, requests: 1,
			wantLine: with(requestFields("INFO", "GET", "GET /orders", 200, 2), "request_id", "req-1"),
		},
		{
			name: "429 throttled: names the tenant", method: "GET", target: "/orders", token: valid, requests: 2,
			wantLine: with(requestFields("WARN", "GET", "GET /orders", 429, -1),
				"request_id", "req-2", "rejected_by", "throttle", "reject_reason", "rate"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuthzFixture(t, iss)
			var resp *http.Response
			for range tc.requests {
				resp = f.do(t, tc.method, tc.target, tc.token)
			}
			recs := decodeLines(t, f.logs.String())
			if len(recs) != tc.requests {
				t.Fatalf("%d access lines for %d requests", len(recs), tc.requests)
			}
			got := recs[len(recs)-1]
			if got["status"] != float64(resp.StatusCode) {
				t.Errorf("status logged %v, client got %d", got["status"], resp.StatusCode)
			}
			want := tc.wantLine
			if tc.name != "401 expired token: no tenant" {
				want = with(want)
				for k, v := range acmeFields {
					want[k] = v
				}
			}
			if want["bytes"] == -1.0 { // a problem document: any length
				want = with(want, "bytes", got["bytes"])
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("access line (-want +got):\n%s", diff)
			}

			audits := decodeLines(t, f.audits.String())
			switch {
			case tc.wantAudit == nil && len(audits) != 0:
				t.Errorf("got audit records %v, want none", audits)
			case tc.wantAudit != nil && len(audits) != 1:
				t.Errorf("got %d audit records, want 1", len(audits))
			case tc.wantAudit != nil:
				if diff := cmp.Diff(tc.wantAudit, audits[0]); diff != "" {
					t.Errorf("audit record (-want +got):\n%s", diff)
				}
			}

			all := f.logs.String() + f.audits.String()
			if leaked := containsAny(all, tc.token, tc.token[strings.LastIndexByte(tc.token, '.')+1:]); leaked != nil {
				t.Errorf("the Authorization header's token appears in the output:\n%s", all)
			}
		})
	}
}

func TestAccessLogAuditorChoice(t *testing.T) {
	iss := authztest.Start(t)
	valid := iss.MustMint("acme", "premium")
	defaults := new(syncBuffer)
	logging.SetDefaultAuditor(logging.NewAuditor(jsonHandler(defaults)))
	t.Cleanup(logging.ResetDefaultAuditor)

	t.Run("WithAuditor(nil) writes none", func(t *testing.T) {
		f := newAuthzFixture(t, iss, logging.WithAuditor(nil))
		f.do(t, "DELETE", "/orders/1", valid)
		if f.audits.String() != "" || defaults.String() != "" {
			t.Errorf("audit records written: %q %q", f.audits.String(), defaults.String())
		}
		if len(decodeLines(t, f.logs.String())) != 1 {
			t.Error("no access line")
		}
	})

	t.Run("no WithAuditor writes to the default auditor", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("DELETE /orders/{id}", authz.RequireRole("admin")(http.NotFoundHandler()))
		logger, _ := newLogger()
		h := logging.AccessLog(logger)(authz.Middleware(iss.Verifier(t))(mux))
		req := newRequest("DELETE", "/orders/1", "req-d")
		req.Header.Set("Authorization", "Bearer "+valid)
		serve(h, req)
		rec := decodeOne(t, defaults.String())
		if rec["outcome"] != "denied" || rec["request_id"] != "req-d" || rec["tenant_id"] != "acme" {
			t.Errorf("default auditor got %v", rec)
		}
	})
}

// signalDone closes done when h has returned.
func signalDone(done chan<- struct{}, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		h.ServeHTTP(w, r)
	})
}

func TestAccessLogFlusher(t *testing.T) {
	logger, buf := newLogger()
	release := make(chan struct{})
	done := make(chan struct{})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the wrapped writer is not an http.Flusher")
		}
		io.WriteString(w, "first\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "second\n")
	})
	srv := httptest.NewServer(signalDone(done, logging.AccessLog(logger, accessClock())(inner)))
	defer srv.Close()
	client := srv.Client()
	client.Timeout = 10 * time.Second // a failure bound, not a wait

	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n') // arrives only if Flush reached the connection
	if err != nil || first != "first\n" {
		t.Fatalf("first chunk = %q, %v", first, err)
	}
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest = %q, %v", rest, err)
	}
	<-done

	rec := decodeOne(t, buf.String())
	if rec["status"] != 200.0 || rec["bytes"] != 13.0 {
		t.Errorf("status, bytes = %v, %v; want 200, 13", rec["status"], rec["bytes"])
	}
}

func TestAccessLogHijacker(t *testing.T) {
	logger, buf := newLogger()
	done := make(chan struct{})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Hijacker); !ok {
			t.Error("the wrapped writer is not an http.Hijacker")
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	})
	srv := httptest.NewServer(signalDone(done, logging.AccessLog(logger, accessClock())(inner)))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a failure bound, not a wait
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: example\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Request-ID: req-ws\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	io.WriteString(conn, "ping\n")
	if echo, err := br.ReadString('\n'); err != nil || echo != "echo ping\n" {
		t.Fatalf("echo = %q, %v", echo, err)
	}
	<-done

	want := map[string]any{
		"level": "INFO", "msg": "request", "method": "GET", "route": "", "status": 101.0, "bytes": 0.0,
		"duration_ms": 1.5, "remote_ip": "127.0.0.1", "request_id": "req-ws",
	}
	if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
}

func TestAccessLogPanic(t *testing.T) {
	tests := []struct {
		name   string
		before func(http.ResponseWriter)
		status int
	}{
		{"before writing", func(http.ResponseWriter) {}, 500},
		{"after WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }, 202},
		{"after a body", func(w http.ResponseWriter) { io.WriteString(w, "partial") }, 200},
		{"after a flush", func(w http.ResponseWriter) { http.NewResponseController(w).Flush() }, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, buf := newLogger()
			h := logging.AccessLog(logger, accessClock())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.before(w)
				panic("boom")
			}))
			func() {
				defer func() {
					if p := recover(); p != "boom" {
						t.Errorf("recovered %v, want the handler's panic", p)
					}
				}()
				serve(h, newRequest("GET", "/", "req-p"))
				t.Error("the panic did not propagate")
			}()
			rec := decodeOne(t, buf.String())
			wantLevel := "INFO"
			if tc.status >= 500 {
				wantLevel = "ERROR"
			}
			if rec["status"] != float64(tc.status) || rec["level"] != wantLevel || rec["request_id"] != "req-p" {
				t.Errorf("status, level, request_id = %v, %v, %v; want %d, %s, req-p", rec["status"], rec["level"], rec["request_id"], tc.status, wantLevel)
			}
		})
	}
}

func TestAccessLogLeavesRequestAlone(t *testing.T) {
	logger, buf := newLogger()
	var inner *http.Request
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) { inner = r })
	h := logging.AccessLog(logger)(mux)

	req := newRequest("GET", "/orders/7", "")
	req.Header.Set("Authorization", "Bearer secret-token-value")
	ctx, header := req.Context(), req.Header.Clone()
	serve(h, req)

	if req.Context() != ctx {
		t.Error("the request's context was replaced")
	}
	if diff := cmp.Diff(header, req.Header); diff != "" {
		t.Errorf("the request's header changed (-before +after):\n%s", diff)
	}
	if req.Pattern != "" {
		t.Errorf("the request's Pattern was set to %q", req.Pattern)
	}
	if inner == nil || inner == req {
		t.Error("the handler did not get a copy of the request")
	}
	if out := buf.String(); strings.Contains(out, "secret-token-value") {
		t.Errorf("the Authorization header appears in the output: %s", out)
	}
}

func TestAccessLogTraceContext(t *testing.T) {
	var inner []string
	logger, buf := newLogger()
	h := logging.AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "inside")
		inner = append(inner, r.Header.Get("Traceparent"))
		// The IDs are for log lines only: no span goes into the context,
		// so a tracer here (otelhttp) decides its sampling as if the access
		// log were not there.
		if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
			t.Errorf("the access log put a span context in the request context: %v", sc)
		}
	}))

	// No traceparent: a new trace, shared by the handler's line and the
	// access line.
	serve(h, newRequest("GET", "/", "req-1"))
	recs := decodeLines(t, buf.String())
	if len(recs) != 2 {
		t.Fatalf("lines: %v", recs)
	}
	tid, _ := recs[0]["trace_id"].(string)
	if len(tid) != 32 || recs[1]["trace_id"] != tid || recs[0]["span_id"] != recs[1]["span_id"] || len(recs[0]["span_id"].(string)) != 16 {
		t.Fatalf("trace fields differ or are malformed: %v", recs)
	}

	// An incoming traceparent is continued with a span of our own.
	buf.Reset()
	req := newRequest("GET", "/", "req-2")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	serve(h, req)
	recs = decodeLines(t, buf.String())
	if recs[1]["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || recs[1]["span_id"] == "00f067aa0ba902b7" {
		t.Fatalf("incoming trace not continued with a new span: %v", recs[1])
	}

	// A malformed traceparent starts a new trace instead.
	for _, bad := range []string{
		"00-zzzz-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // version 00 with more
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
	} {
		buf.Reset()
		req = newRequest("GET", "/", "req-3")
		req.Header.Set("Traceparent", bad)
		serve(h, req)
		recs = decodeLines(t, buf.String())
		if tid, _ := recs[1]["trace_id"].(string); len(tid) != 32 || tid == "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("traceparent %q: %v, want a new trace", bad, recs[1])
		}
	}

	// A later version with more fields is read for its first four.
	buf.Reset()
	req = newRequest("GET", "/", "req-4")
	req.Header.Set("Traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes")
	serve(h, req)
	if recs = decodeLines(t, buf.String()); recs[1]["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("version 01 traceparent not continued: %v", recs[1])
	}
}

// A short token sent as a request ID is neither echoed nor logged.
func TestAccessLogRefusesTokenAsRequestID(t *testing.T) {
	logger, buf := newLogger()
	const tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	resp := serve(logging.AccessLog(logger, accessClock())(http.NotFoundHandler()), newRequest("GET", "/", tok))
	if got := resp.Header.Get("X-Request-Id"); got == tok || got == "" {
		t.Errorf("echoed request ID %q", got)
	}
	if strings.Contains(buf.String(), "c2lnbmF0dXJl") {
		t.Errorf("the token reached the log:\n%s", buf)
	}
}

// With no auditor named or set as default, audit events go where the
// access lines go.
func TestAccessLogAuditsToItsOwnLogger(t *testing.T) {
	logging.ResetDefaultAuditor()
	t.Cleanup(logging.ResetDefaultAuditor)
	logger, buf := newLogger()
	denied := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant.Reject(r.Context(), tenant.Rejection{By: "authz", Reason: "expired", Status: 401})
		w.WriteHeader(http.StatusUnauthorized)
	})
	serve(logging.AccessLog(logger, accessClock())(denied), newRequest("GET", "/orders", "req-9"))
	var audits int
	for _, rec := range decodeLines(t, buf.String()) {
		if rec["log_type"] == "audit" {
			audits++
			if rec["outcome"] != "denied" || rec["request_id"] != "req-9" {
				t.Errorf("audit record %v", rec)
			}
		}
	}
	if audits != 1 {
		t.Fatalf("%d audit records in the access log's output, want 1:\n%s", audits, buf)
	}
}

// The library's middleware between the access log and the router record
// the route the router found, so the default needs no second routing.
func TestAccessLogRouteRecordedByInnerMiddleware(t *testing.T) {
	logger, buf := newLogger()
	acme := tenant.ResolverFunc(func(*http.Request) (tenant.Tenant, error) { return tenant.New("acme", tenant.Tier{}) })
	h := logging.AccessLog(logger, accessClock())(tenant.Middleware(acme)(ordersMux()))
	serve(h, newRequest("POST", "/orders/42", "req-r"))
	if got := decodeOne(t, buf.String())["route"]; got != "POST /orders/{id}" {
		t.Fatalf("route = %v, want the pattern recorded by tenant.Middleware", got)
	}
}

// TestAccessLogLevelWithAuditor: a line below the logger's level is not
// written, even though the access log goes on for the audit event it may
// owe (the default auditor writes to the same logger).
func TestAccessLogLevelWithAuditor(t *testing.T) {
	logging.ResetDefaultAuditor()
	t.Cleanup(logging.ResetDefaultAuditor)
	buf := new(syncBuffer)
	logger := slog.New(logging.NewHandler(slog.NewJSONHandler(buf, nil), logging.WithLevels(logging.NewLevels(slog.LevelWarn))))
	serve(logging.AccessLog(logger, accessClock())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})), newRequest("GET", "/", "req-1"))
	if buf.String() != "" {
		t.Errorf("an INFO access line reached a WARN logger: %s", buf)
	}
}

// TestAccessLogRedacts: the access line goes through redaction like any
// other: a JWT-shaped method (a token is a valid HTTP method) and a field
// whose key WithRedactedKeys names are not written.
func TestAccessLogRedacts(t *testing.T) {
	const jwtLike = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	logger, buf := newLogger()
	serve(logging.AccessLog(logger, accessClock())(http.NotFoundHandler()), newRequest(jwtLike, "/", "req-1"))
	if strings.Contains(buf.String(), "c2lnbmF0dXJl") {
		t.Errorf("a JWT-shaped method reached the log: %s", buf)
	}

	logger, buf = newLogger(logging.WithRedactedKeys("route"))
	serve(mustStack(t, tenancy.WithAccessLog(logger, accessClock())).Wrap(ordersMux()), newRequest("POST", "/orders/42", "req-2"))
	if line := decodeOne(t, buf.String()); line["route"] != logging.Redacted {
		t.Errorf("route = %v, want it redacted", line["route"])
	}
}

// TestAccessLogRefusalLevel: a 503 a layer decided is at the client-error
// level, a 503 the handler wrote is an error.
func TestAccessLogRefusalLevel(t *testing.T) {
	logger, buf := newLogger()
	refused := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant.Reject(r.Context(), tenant.Rejection{By: "throttle", Reason: "store_unavailable", Status: 503})
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	failed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	serve(logging.AccessLog(logger, accessClock())(refused), newRequest("GET", "/", "req-1"))
	serve(logging.AccessLog(logger, accessClock())(failed), newRequest("GET", "/", "req-2"))
	lines := decodeLines(t, buf.String())
	if len(lines) != 2 || lines[0]["level"] != "WARN" || lines[1]["level"] != "ERROR" {
		t.Errorf("levels %v and %v, want WARN for the refusal and ERROR for the failure", lines[0]["level"], lines[1]["level"])
	}
}
