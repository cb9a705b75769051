package tenant_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/trace"
)

type captured struct {
	header http.Header
}

func downstream(t *testing.T) (*httptest.Server, *captured) {
	t.Helper()
	c := &captured{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.header = r.Header.Clone()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, c
}

func callerContext(t *testing.T) context.Context {
	t.Helper()
	tn, err := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := tenant.NewTokenContext(tenant.NewContext(context.Background(), tn), "caller.token.sig")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	return trace.ContextWithSpanContext(ctx, sc)
}

func TestTransportForwardsTokenTraceAndBaggage(t *testing.T) {
	srv, got := downstream(t)
	client := &http.Client{Transport: &tenant.Transport{Base: srv.Client().Transport}}
	req, _ := http.NewRequestWithContext(callerContext(t), http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := got.header.Get("Authorization"); a != "Bearer caller.token.sig" {
		t.Errorf("Authorization = %q", a)
	}
	if tp := got.header.Get("Traceparent"); !strings.HasPrefix(tp, "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01") {
		t.Errorf("traceparent = %q", tp)
	}
	if b := got.header.Get("Baggage"); b != "tenant.id=acme" {
		t.Errorf("baggage = %q", b)
	}
	if req.Header.Get("Authorization") != "" || req.Header.Get("Baggage") != "" {
		t.Error("the caller's request was changed")
	}
}

func TestTransportServiceTokenAndRefusals(t *testing.T) {
	srv, got := downstream(t)
	svc := &tenant.Transport{Base: srv.Client().Transport, ServiceToken: func(context.Context) (string, error) { return "service.token.sig", nil }}
	req, _ := http.NewRequestWithContext(callerContext(t), http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: svc}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := got.header.Get("Authorization"); a != "Bearer service.token.sig" {
		t.Errorf("Authorization = %q, want the service token", a)
	}

	// No token anywhere: refused, not sent anonymously.
	plain := &tenant.Transport{Base: srv.Client().Transport}
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader("body"))
	if _, err := (&http.Client{Transport: plain}).Do(req); !errors.Is(err, tenant.ErrNoCredential) {
		t.Errorf("no token: err = %v, want ErrNoCredential", err)
	}
	anon := &tenant.Transport{Base: srv.Client().Transport, AllowAnonymous: true}
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	resp, err = (&http.Client{Transport: anon}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.header.Get("Authorization") != "" || got.header.Get("Baggage") != "" {
		t.Errorf("anonymous call carried %v", got.header)
	}
}

// Inbound baggage is never a source of tenancy: a request that names a
// tenant only in baggage has none.
func TestForgedBaggageIsIgnored(t *testing.T) {
	res := tenant.Chain(tenant.Verified())
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Baggage", "tenant.id=globex")
	if _, err := res.Resolve(r); !errors.Is(err, tenant.ErrNoTenant) {
		t.Fatalf("baggage resolved a tenant: %v", err)
	}
}

func TestTransportForwardsRequestID(t *testing.T) {
	srv, got := downstream(t)
	tr := &tenant.Transport{Base: srv.Client().Transport, RequestID: func(context.Context) (string, bool) { return "req-42", true }}
	req, _ := http.NewRequestWithContext(callerContext(t), http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if id := got.header.Get("X-Request-Id"); id != "req-42" {
		t.Errorf("X-Request-ID = %q", id)
	}
}
