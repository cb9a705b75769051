// Package stacktest is what the stack's tests and the router adapters'
// tests share: a stack of every part around a service, the access lines it
// wrote and the usage it metered, and the scenario every router must pass.
package stacktest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Fixture is an issuer, an access log, a meter and a throttle of rate 1,
// burst 2 on every tier: the parts of the stack its Options name.
type Fixture struct {
	Issuer *authztest.Issuer
	Logs   *syncbuf.Buffer
	Usage  *meter.Recorder

	limiter *throttle.Limiter
	spans   *tracetest.SpanRecorder
	traces  *sdktrace.TracerProvider
	mu      sync.Mutex
	records []meter.Record
}

// New returns a Fixture whose issuer, meter and servers end with t.
func New(t testing.TB) *Fixture {
	t.Helper()
	f := &Fixture{Issuer: authztest.Start(t), Logs: &syncbuf.Buffer{}, spans: tracetest.NewSpanRecorder()}
	f.traces = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
	t.Cleanup(func() { f.traces.Shutdown(context.Background()) })
	limits := map[string]throttle.Limits{}
	for _, name := range tenant.DefaultTiers.Names() {
		limits[name] = throttle.Limits{Rate: 1, Burst: 2}
	}
	var err error
	if f.limiter, err = throttle.New(tenant.DefaultTiers, limits); err != nil {
		t.Fatal(err)
	}
	f.Usage, err = meter.New("orders", meter.SinkFunc(func(_ context.Context, recs []meter.Record) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.records = append(f.records, recs...)
		return nil
	}), meter.WithoutLoop(), meter.WithMeters(meter.HTTPMeters()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Usage.Shutdown(context.Background()) })
	return f
}

// Options are the stack's parts: the access log into Logs, the meter
// Usage, authz by Issuer's verifier and the throttle.
func (f *Fixture) Options(t testing.TB) []tenancy.Option {
	return []tenancy.Option{
		tenancy.WithAccessLog(slog.New(logging.NewHandler(logging.NewJSONHandler(f.Logs, nil))), logging.WithAuditor(nil)),
		tenancy.WithMeter(f.Usage),
		tenancy.WithAuthz(f.Issuer.Verifier(t)),
		tenancy.WithThrottle(f.limiter),
	}
}

// Do serves one request through h, with token as its bearer token when
// it is not empty.
func Do(h http.Handler, method, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// Lines decodes every access line written so far.
func (f *Fixture) Lines(t testing.TB) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.Logs.String()), "\n") {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// Counts shuts the meter down and sums what it delivered of the request
// meters, by "tenant meter route reason".
func (f *Fixture) Counts(t testing.TB) map[string]float64 {
	t.Helper()
	if err := f.Usage.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	counts := map[string]float64{}
	for _, r := range f.records {
		if r.Meter == meter.MeterRequests || r.Meter == meter.MeterDenied {
			counts[r.TenantID+" "+r.Meter+" "+r.Dimensions["route"]+" "+r.Dimensions["reason"]] += r.Value
		}
	}
	return counts
}

// Tenant is the handler every router test routes GET /t/{tenant}/orders
// to: it answers 201 with the ID of the tenant in the request's context,
// so that a test sees both that the context reached the handler and that
// the stack saw the handler's status and bytes.
func Tenant(w http.ResponseWriter, r *http.Request) {
	tn, _ := tenant.FromContext(r.Context())
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, tn.ID)
}

// CheckRouter is the scenario every router adapter passes. h is the
// router inside the stack built from f.Options; it routes GET
// /t/{tenant}/orders (in its own syntax, whose pattern is route) to a
// handler that calls Tenant. Two requests are served, a third is
// throttled, a fourth has no token and a fifth no route. The access log,
// the meter and the span of otelhttp around h must name the route of
// each, the router's pattern for the refused ones too, and the access log
// the status and bytes the handler wrote.
func (f *Fixture) CheckRouter(t *testing.T, h http.Handler, route string) {
	t.Helper()
	h = otelhttp.NewHandler(h, "server", otelhttp.WithTracerProvider(f.traces))
	acme := f.Issuer.MustMint("acme", "basic")
	want := []struct {
		path, token string
		status      int
		route       string
		reason      string // rejected_by:reject_reason, "" when served
		body        string // "" when not checked
	}{
		{"/t/acme/orders", acme, 201, route, "", "acme"},
		{"/t/acme/orders", acme, 201, route, "", "acme"},
		{"/t/acme/orders", acme, 429, route, "throttle:rate", ""},
		{"/t/acme/orders", "", 401, route, "authz:no_token", ""},
		{"/nowhere", f.Issuer.MustMint("globex", "basic"), 404, "", "", ""},
	}
	for _, w := range want {
		resp := Do(h, http.MethodGet, w.path, w.token)
		if resp.Code != w.status || w.body != "" && resp.Body.String() != w.body {
			t.Fatalf("GET %s: %d %q, want %d %q", w.path, resp.Code, resp.Body, w.status, w.body)
		}
	}
	lines := f.Lines(t)
	if len(lines) != len(want) {
		t.Fatalf("%d access lines for %d requests:\n%s", len(lines), len(want), f.Logs)
	}
	for i, w := range want {
		l := lines[i]
		reason := ""
		if l["rejected_by"] != nil {
			reason = l["rejected_by"].(string) + ":" + l["reject_reason"].(string)
		}
		if l["route"] != w.route || l["status"] != float64(w.status) || reason != w.reason {
			t.Errorf("line %d: route %v, status %v, refusal %q; want %q, %d, %q", i, l["route"], l["status"], reason, w.route, w.status, w.reason)
		}
		if w.body != "" && l["bytes"] != float64(len(w.body)) {
			t.Errorf("line %d: bytes %v, want the %d the handler wrote", i, l["bytes"], len(w.body))
		}
	}
	spans := f.spans.Ended()
	if len(spans) != len(want) {
		t.Fatalf("%d spans for %d requests", len(spans), len(want))
	}
	for i, w := range want {
		attrs := map[attribute.Key]string{}
		for _, kv := range spans[i].Attributes() {
			attrs[kv.Key] = kv.Value.String()
		}
		// http.route is the path pattern, without a ServeMux's method.
		wantRoute := w.route
		if j := strings.IndexByte(wantRoute, '/'); j > 0 {
			wantRoute = wantRoute[j:]
		}
		if attrs["http.route"] != wantRoute {
			t.Errorf("span %d: http.route %q, want %q", i, attrs["http.route"], wantRoute)
		}
		if w.body != "" && attrs[tenant.IDKey] != w.body {
			t.Errorf("span %d: tenant.id %q, want %q", i, attrs[tenant.IDKey], w.body)
		}
	}
	counts := f.Counts(t)
	wantCounts := map[string]float64{
		"acme http.requests " + route + " ":                     2,
		"acme http.requests.denied " + route + " throttle:rate": 1,
		" http.requests.denied " + route + " authz:no_token":    1,
		"globex http.requests  ":                                1,
	}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("metered %q = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
}
