package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/logging"
)

var (
	traceparent = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
	hexTraceID  = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// logLine is one JSON line of stdout.
type logLine = servicetest.LogLine

// TestLogLinesOfARequest checks that what a handler logs and the access
// line of its request carry the same request_id and trace_id, and the
// tenant, tier and user from the token, with no code in the handler for
// any of it.
func TestLogLinesOfARequest(t *testing.T) {
	svc, iss := startWithIssuer(t)
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := svc.Do(t, "POST", "/orders", alice, `{"item":"anvil","quantity":2}`, http.Header{
		"X-Request-Id": {"req-42"},
		"Traceparent":  {"00-" + traceID + "-00f067aa0ba902b7-01"},
	})
	if r.Status != http.StatusCreated || r.Header.Get("X-Request-Id") != "req-42" {
		t.Fatalf("status %d, X-Request-Id %q: want 201 and the request's ID echoed", r.Status, r.Header.Get("X-Request-Id"))
	}
	placed := decodeOrder(t, r.Body)
	plain := svc.do(t, "POST", "/orders", alice, `{"item":"anvil","quantity":1}`)
	plainID := plain.Header.Get("X-Request-Id")
	if plainID == "" {
		t.Fatal("no X-Request-Id in a response")
	}
	svc.Stop(t)
	lines := svc.Lines(t)

	tenantFields := logLine{"tenant_id": "acme", "tenant_tier": "premium", "user_id": "alice"}
	for _, c := range []struct {
		name, requestID, traceID string
	}{
		{"incoming request ID and trace", "req-42", traceID},
		{"generated request ID and trace", plainID, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			handler := servicetest.OneLine(t, lines, logLine{"msg": "order created", "request_id": c.requestID})
			access := servicetest.OneLine(t, lines, logLine{"msg": "request", "request_id": c.requestID})
			servicetest.WantFields(t, "handler line", handler, tenantFields)
			servicetest.WantFields(t, "handler line", handler, logLine{"level": "INFO"})
			servicetest.WantFields(t, "access line", access, tenantFields)
			servicetest.WantFields(t, "access line", access, logLine{
				"level": "INFO", "method": "POST", "route": "POST /orders", "status": 201.0, "remote_ip": "127.0.0.1",
			})
			for _, k := range []string{"bytes", "duration_ms"} {
				if _, ok := access[k].(float64); !ok {
					t.Errorf("access line: %s = %v, want a number", k, access[k])
				}
			}
			tid, _ := access["trace_id"].(string)
			if !hexTraceID.MatchString(tid) || handler["trace_id"] != tid || handler["span_id"] != access["span_id"] {
				t.Errorf("trace_id/span_id: handler %v/%v, access %v/%v: want the same valid IDs",
					handler["trace_id"], handler["span_id"], access["trace_id"], access["span_id"])
			}
			if c.traceID != "" && tid != c.traceID {
				t.Errorf("trace_id %s, want the incoming %s", tid, c.traceID)
			}
		})
	}
	if l := servicetest.OneLine(t, lines, logLine{"msg": "order created", "request_id": "req-42"}); l["order_id"] != placed.ID {
		t.Errorf("order created line names order %v, want %s", l["order_id"], placed.ID)
	}
}

// TestRefusalLines checks the access lines of requests middleware refused:
// a 401 says authz refused it and why, and comes with an audit event; a
// 429 says the throttle refused it and names the tenant.
func TestRefusalLines(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"TIERS_FILE": writeFile(t, "tiers.json", slowTiers)})
	eve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))
	expired := iss.MustMint("acme", "premium", authztest.WithExpiry(-time.Minute))

	noToken := svc.do(t, "GET", "/orders", "", "")
	old := svc.do(t, "GET", "/orders", expired, "")
	var limited response
	for i := range 11 {
		limited = svc.do(t, "GET", "/orders", eve, "")
		if i < 10 && limited.Status != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, limited.Status)
		}
	}
	if limited.Status != http.StatusTooManyRequests {
		t.Fatalf("request 11: status %d, want 429", limited.Status)
	}
	svc.Stop(t)
	lines := svc.Lines(t)

	for _, c := range []struct {
		name   string
		r      response
		reason string
	}{
		{"no token", noToken, "no_token"},
		{"expired token", old, "expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := c.r.Header.Get("X-Request-Id")
			access := servicetest.OneLine(t, lines, logLine{"msg": "request", "request_id": id})
			servicetest.WantFields(t, "401 line", access, logLine{
				"level": "WARN", "status": 401.0, "route": "GET /orders", "rejected_by": "authz", "reject_reason": c.reason,
			})
			if _, ok := access["tenant_id"]; ok {
				t.Errorf("401 line names a tenant no token proved: %v", access)
			}
			audit := servicetest.OneLine(t, lines, logLine{"msg": "audit", "request_id": id})
			servicetest.WantFields(t, "audit line", audit, logLine{
				"log_type": "audit", "action": "authorize", "resource": "GET /orders", "outcome": "denied",
				"reject_reason": c.reason, "status": 401.0, "trace_id": access["trace_id"],
			})
		})
	}

	t.Run("rate limited", func(t *testing.T) {
		id := limited.Header.Get("X-Request-Id")
		access := servicetest.OneLine(t, lines, logLine{"msg": "request", "request_id": id})
		servicetest.WantFields(t, "429 line", access, logLine{
			"level": "WARN", "status": 429.0, "route": "GET /orders", "rejected_by": "throttle", "reject_reason": "rate",
			"tenant_id": "globex", "tenant_tier": "basic", "user_id": "eve",
		})
		if n := len(servicetest.LinesWhere(lines, logLine{"msg": "audit", "request_id": id})); n != 0 {
			t.Errorf("%d audit lines for a 429; throttling is not an authorization decision", n)
		}
	})
}

// TestLogLevel runs the same requests at each LOG_LEVEL.
func TestLogLevel(t *testing.T) {
	for _, c := range []struct {
		level string
		// what appears: a debug line of a handler, an info line of a
		// handler, the access line of a 200, that of a 401, the start line
		debug, info, access200, access401, started bool
	}{
		{"debug", true, true, true, true, true},
		{"", false, true, true, true, true}, // info
		{"INFO", false, true, true, true, true},
		{"warn", false, false, false, true, false},
		{"error", false, false, false, false, false},
	} {
		t.Run("LOG_LEVEL="+c.level, func(t *testing.T) {
			iss := startIssuer(t)
			svc := startForIssuer(t, iss, map[string]string{"LOG_LEVEL": c.level})
			alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
			svc.create(t, alice, "anvil", 1)
			svc.list(t, "/orders", alice)
			svc.do(t, "GET", "/orders", "", "")
			svc.Stop(t)
			lines := svc.Lines(t)
			for _, w := range []struct {
				what string
				want bool
				line logLine
			}{
				{"debug line", c.debug, logLine{"msg": "orders listed", "level": "DEBUG"}},
				{"info line", c.info, logLine{"msg": "order created", "level": "INFO"}},
				{"access line of a 200", c.access200, logLine{"msg": "request", "status": 200.0}},
				{"access line of a 401", c.access401, logLine{"msg": "request", "status": 401.0}},
				{"start line", c.started, logLine{"msg": "orders service started"}},
				{"audit line", true, logLine{"msg": "audit", "log_type": "audit"}}, // whatever the level
			} {
				if got := len(servicetest.LinesWhere(lines, w.line)) > 0; got != w.want {
					t.Errorf("%s logged: %v, want %v", w.what, got, w.want)
				}
			}
		})
	}
}

// TestTokensNeverLogged sends tokens every way a client might, at level
// debug, with a catalog that fails: neither a token nor its signature
// appears anywhere in the service's output.
func TestTokensNeverLogged(t *testing.T) {
	cat := startCatalog(t, map[string]int64{"anvil": 1999})
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"LOG_LEVEL": "debug", "CATALOG_URL": cat.URL})
	other := authztest.Start(t, authztest.WithAudience(iss.Audience()))
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	tokens := map[string]string{
		"valid":   alice,
		"expired": iss.MustMint("acme", "premium", authztest.WithSubject("alice"), authztest.WithExpiry(-time.Minute)),
		"foreign": other.MustMint("acme", "premium", authztest.WithSubject("alice")),
	}

	placed := svc.create(t, alice, "anvil", 1)
	for _, path := range []string{"/orders", "/orders/" + placed.ID, "/users/alice/orders", "/orders/" + alice} {
		svc.do(t, "GET", path, alice, "")
	}
	svc.do(t, "POST", "/orders", alice, `{"item":"broken","quantity":1}`) // 502, logged with its error
	for _, tok := range tokens {
		svc.do(t, "GET", "/orders", tok, "")
		svc.do(t, "GET", "/orders?access_token="+tok, "", "")
		svc.Do(t, "GET", "/orders", "", "", http.Header{"Authorization": {"Basic " + tok}})
		svc.Do(t, "GET", "/healthz", "", "", http.Header{"X-Request-Id": {tok}})
	}
	svc.Stop(t)

	out := svc.Stdout.String() + svc.Stderr.String()
	svc.Lines(t) // and stdout is JSON lines throughout
	for name, tok := range tokens {
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		for what, s := range map[string]string{"token": tok, "signature": sig} {
			if strings.Contains(out, s) {
				t.Errorf("the %s token's %s is in the output", name, what)
			}
		}
	}
	if !strings.Contains(out, `"msg":"catalog failed"`) || !strings.Contains(out, `"status":502`) {
		t.Errorf("the catalog failure is not logged:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n < 20 {
		t.Errorf("only %d lines of output: the test logged less than it means to", n)
	}
}

// TestStoppedStdoutHoldsNoRequest runs the service with a stdout nobody
// reads: /healthz and authenticated requests still answer, while their
// log lines wait in a log stream of 2 KiB, and those that do not fit are
// dropped and counted. Once stdout reads again, the kept lines arrive
// whole, with a line that reports how many were dropped; the audit event
// of a refused request is not dropped; and the service stops cleanly.
func TestStoppedStdoutHoldsNoRequest(t *testing.T) {
	iss := startIssuer(t)
	st, stalled := servicetest.StartStalled(t, servicetest.IssuerEnv(iss, nil),
		orders(withStdoutOptions(logging.WithBufferSize(2<<10))))
	svc := &service{st}
	// A request held by stdout fails the test instead of waiting a minute.
	svc.Client.Timeout = 10 * time.Second
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	if r := svc.do(t, "GET", "/healthz", "", ""); r.Status != http.StatusOK {
		t.Fatalf("GET /healthz: status %d", r.Status)
	}
	const answered = 20
	for range answered {
		svc.list(t, "/orders", alice)
	}
	servicetest.WantProblem(t, svc.do(t, "GET", "/orders", "", ""), http.StatusUnauthorized)
	if out := svc.Stdout.String(); out != "" {
		t.Fatalf("stdout is stalled, yet it received:\n%s", out)
	}

	stalled.Resume()
	svc.Stop(t)
	lines := svc.Lines(t) // whole JSON objects, every one
	servicetest.OneLine(t, lines, logLine{"msg": "orders service started"})
	servicetest.OneLine(t, lines, logLine{"msg": "audit", "status": 401.0})
	// The stream held the start line and then what fitted of the 21
	// access lines; the lines of the shutdown may have found it still
	// full, too. Each of them is either on stdout or counted in a report.
	logged := len(servicetest.LinesWhere(lines, logLine{"msg": "request"}))
	for _, msg := range []string{"orders service stopping: draining in-flight requests", "orders service stopped"} {
		logged += len(servicetest.LinesWhere(lines, logLine{"msg": msg}))
	}
	dropped := 0
	for _, r := range servicetest.LinesWhere(lines, logLine{"msg": "logging: log lines dropped while the output was not keeping up"}) {
		servicetest.WantFields(t, "drop report", r, logLine{"level": "WARN", "stream": "log"})
		n, _ := r["dropped"].(float64)
		dropped += int(n)
	}
	if dropped == 0 || logged+dropped != answered+1+2 {
		t.Errorf("%d access and stop lines on stdout and %d reported dropped; want some dropped, and %d in all",
			logged, dropped, answered+1+2)
	}
}
