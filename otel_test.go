package tenancy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/internal/stacktest"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// telemetry is the OpenTelemetry SDK as a service sets it up: every root
// span sampled, a parent's decision followed, spans and metrics kept in
// memory for the test.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	traces *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	meters *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T) *telemetry {
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.traces = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())), sdktrace.WithSpanProcessor(tel.spans))
	tel.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		tel.traces.Shutdown(context.Background())
		tel.meters.Shutdown(context.Background())
	})
	return tel
}

// handler is otelhttp.NewHandler on this SDK.
func (tel *telemetry) handler(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "server", otelhttp.WithTracerProvider(tel.traces), otelhttp.WithMeterProvider(tel.meters),
		otelhttp.WithPropagators(propagation.TraceContext{}))
}

// attrs returns a span's attributes by key.
func attrs(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// TestOTelOutsideTheStack: with otelhttp outside the stack, every request
// has a sampled span named by its route, with the route, the tenant and
// the tier, and a refusal's reason; the request duration metric has the
// route and the tier, never the tenant ID.
func TestOTelOutsideTheStack(t *testing.T) {
	tel := newTelemetry(t)
	f := stacktest.New(t)
	s, err := tenancy.New(f.Options(t)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t/{tenant}/orders", stacktest.Tenant)
	h := tel.handler(s.Wrap(mux))

	acme := f.Issuer.MustMint("acme", "basic")
	for _, tok := range []string{acme, acme, acme, ""} { // served twice, throttled, no token
		stacktest.Do(h, http.MethodGet, "/t/acme/orders", tok)
	}
	spans := tel.spans.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans for 4 requests", len(spans))
	}
	want := []map[string]string{
		{"http.route": "/t/{tenant}/orders", "tenant.id": "acme", "tenant.tier": "basic"},
		{"http.route": "/t/{tenant}/orders", "tenant.id": "acme", "tenant.tier": "basic"},
		{"http.route": "/t/{tenant}/orders", "tenant.id": "acme", "tenant.tier": "basic", "tenancy.rejected_by": "throttle", "tenancy.reject_reason": "rate"},
		{"http.route": "/t/{tenant}/orders", "tenancy.rejected_by": "authz", "tenancy.reject_reason": "no_token"},
	}
	for i, sp := range spans {
		if sp.Name() != "GET /t/{tenant}/orders" || !sp.SpanContext().IsSampled() {
			t.Errorf("span %d: %q, sampled %v; want GET /t/{tenant}/orders, sampled", i, sp.Name(), sp.SpanContext().IsSampled())
		}
		got := attrs(sp.Attributes())
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("span %d: %s = %q, want %q", i, k, got[k], v)
			}
		}
		if _, ok := want[i]["tenant.id"]; !ok && got["tenant.id"] != "" {
			t.Errorf("span %d names tenant %q for a request without one", i, got["tenant.id"])
		}
	}

	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	points := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "http.server.request.duration" {
				continue
			}
			for _, p := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				a := attrs(p.Attributes.ToSlice())
				if a["tenant.id"] != "" {
					t.Errorf("request metric labelled with tenant %q", a["tenant.id"])
				}
				points[fmt.Sprintf("%s %s %s", a["http.route"], a["tenant.tier"], a["http.response.status_code"])] += p.Count
			}
		}
	}
	for k, n := range map[string]uint64{"/t/{tenant}/orders basic 201": 2, "/t/{tenant}/orders basic 429": 1, "/t/{tenant}/orders  401": 1} {
		if points[k] != n {
			t.Errorf("http.server.request.duration %q: %d points, want %d (all: %v)", k, points[k], n, points)
		}
	}
}

// TestOTelInsideTheStack: otelhttp inside the stack, around the router,
// still makes its own sampling decision: every span is exported, and a
// request that continues a trace is logged and traced in that trace.
func TestOTelInsideTheStack(t *testing.T) {
	tel := newTelemetry(t)
	f := stacktest.New(t)
	s, err := tenancy.New(f.Options(t)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t/{tenant}/orders", stacktest.Tenant)
	h := s.Wrap(tel.handler(mux))

	acme := f.Issuer.MustMint("acme", "basic")
	stacktest.Do(h, http.MethodGet, "/t/acme/orders", acme)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequest(http.MethodGet, "/t/acme/orders", nil)
	req.Header.Set("Authorization", "Bearer "+acme)
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)

	spans := tel.spans.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans exported for 2 requests, want 2", len(spans))
	}
	for i, sp := range spans {
		if !sp.SpanContext().IsSampled() {
			t.Errorf("span %d not sampled", i)
		}
	}
	if got := spans[1].SpanContext().TraceID().String(); got != traceID {
		t.Errorf("span of the continued request in trace %s, want %s", got, traceID)
	}
	if lines := f.Lines(t); len(lines) != 2 || lines[1]["trace_id"] != traceID {
		t.Errorf("access lines %v: want the second in trace %s", lines, traceID)
	}
}

// TestOTelOneTraceAcrossServices: a service calling another through
// tenant.Transport, both behind otelhttp and the stack, makes one trace:
// the callee's server span is a child of the caller's.
func TestOTelOneTraceAcrossServices(t *testing.T) {
	tel := newTelemetry(t)
	f := stacktest.New(t)
	catalogStack, err := tenancy.New(tenancy.WithAuthz(f.Issuer.Verifier(t)))
	if err != nil {
		t.Fatal(err)
	}
	catalogMux := http.NewServeMux()
	catalogMux.HandleFunc("GET /products/{name}", stacktest.Tenant)
	catalog := httptest.NewServer(tel.handler(catalogStack.Wrap(catalogMux)))
	t.Cleanup(catalog.Close)

	client := &http.Client{Transport: &tenant.Transport{}}
	ordersStack, err := tenancy.New(tenancy.WithAuthz(f.Issuer.Verifier(t)))
	if err != nil {
		t.Fatal(err)
	}
	ordersMux := http.NewServeMux()
	ordersMux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, catalog.URL+"/products/anvil", nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		io.WriteString(w, resp.Status+" "+string(body))
	})
	orders := tel.handler(ordersStack.Wrap(ordersMux))

	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+f.Issuer.MustMint("acme", "premium"))
	orders.ServeHTTP(w, req)
	if w.Body.String() != "201 Created acme" {
		t.Fatalf("orders answered %d %q", w.Code, w.Body)
	}
	spans := tel.spans.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want the catalog's and the orders'", len(spans))
	}
	cat, ord := spans[0], spans[1]
	if cat.Name() != "GET /products/{name}" || ord.Name() != "POST /orders" {
		t.Fatalf("spans %q, %q", cat.Name(), ord.Name())
	}
	if cat.SpanContext().TraceID() != ord.SpanContext().TraceID() || cat.Parent().SpanID() != ord.SpanContext().SpanID() {
		t.Errorf("catalog span %v with parent %v; want a child of orders' %v", cat.SpanContext().TraceID(), cat.Parent().SpanID(), ord.SpanContext().SpanID())
	}
	for _, sp := range spans {
		if a := attrs(sp.Attributes()); a["tenant.id"] != "acme" || a["tenant.tier"] != "premium" {
			t.Errorf("span %q: tenant %q tier %q", sp.Name(), a["tenant.id"], a["tenant.tier"])
		}
	}
}
