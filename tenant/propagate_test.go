package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/internal/request"
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

// verifiedContext returns the context of a request whose tenant tn was
// verified from token, as authz.Middleware leaves it.
func verifiedContext(t *testing.T, tn tenant.Tenant, token string) context.Context {
	t.Helper()
	_, r, st, _ := request.Enter(request.Authz, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	tn.Source = tenant.SourceToken
	st.SetTenant(&tn, token)
	return r.Context()
}

func callerContext(t *testing.T) context.Context {
	t.Helper()
	tn, err := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := verifiedContext(t, tn, "caller.token.sig")
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

// namedHosts returns a transport that dials each host name of hosts
// ("a.test:80") at the loopback server given for it, so that two servers
// answer under two host names.
func namedHosts(t *testing.T, hosts map[string]*httptest.Server) http.RoundTripper {
	t.Helper()
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		srv, ok := hosts[addr]
		if !ok {
			return nil, fmt.Errorf("no test server for %s", addr)
		}
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}}
}

// TestTransportTokenStaysWithItsHost: the caller's token reaches the host
// the request was built for and never another one, neither through a
// redirect (http.Client calls RoundTrip again for every hop) nor, with
// Hosts, through a request built for a host off the list.
func TestTransportTokenStaysWithItsHost(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // host + path → Authorization
	record := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Host+r.URL.Path] = r.Header.Get("Authorization")
		mu.Unlock()
	}
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(w, r)
		switch r.URL.Path {
		case "/to-other-host":
			http.Redirect(w, r, "http://b.test/landing", http.StatusFound)
		case "/to-other-port":
			http.Redirect(w, r, "http://a.test:8080/landing", http.StatusFound)
		case "/to-same-host":
			http.Redirect(w, r, "/landing", http.StatusFound)
		case "/to-other-host-and-back":
			http.Redirect(w, r, "http://b.test/back", http.StatusFound)
		}
	}))
	t.Cleanup(a.Close)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(w, r)
		if r.URL.Path == "/back" {
			http.Redirect(w, r, "http://a.test/landing-after-b", http.StatusFound)
		}
	}))
	t.Cleanup(b.Close)
	base := namedHosts(t, map[string]*httptest.Server{"a.test:80": a, "a.test:8080": a, "b.test:80": b})

	get := func(tr *tenant.Transport, url string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(callerContext(t), http.MethodGet, url, nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
	}
	const want = "Bearer caller.token.sig"
	tests := []struct {
		name  string
		hosts []string
		url   string
		want  map[string]string
	}{
		{"redirect to another host", nil, "http://a.test/to-other-host",
			map[string]string{"a.test/to-other-host": want, "b.test/landing": ""}},
		{"redirect to another port", nil, "http://a.test/to-other-port",
			map[string]string{"a.test/to-other-port": want, "a.test:8080/landing": ""}},
		{"redirect on the same host", nil, "http://a.test/to-same-host",
			map[string]string{"a.test/to-same-host": want, "a.test/landing": want}},
		{"through another host and back", nil, "http://a.test/to-other-host-and-back",
			map[string]string{"a.test/to-other-host-and-back": want, "b.test/back": "", "a.test/landing-after-b": want}},
		{"host off the list", []string{"a.test"}, "http://b.test/webhook",
			map[string]string{"b.test/webhook": ""}},
		{"host on the list", []string{"A.TEST"}, "http://a.test/api",
			map[string]string{"a.test/api": want}},
		{"redirect to a listed host", []string{"a.test", "b.test:80"}, "http://a.test/to-other-host",
			map[string]string{"a.test/to-other-host": want, "b.test/landing": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			clear(seen)
			mu.Unlock()
			get(&tenant.Transport{Base: base, Hosts: tt.hosts}, tt.url)
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tt.want, seen); diff != "" {
				t.Errorf("Authorization per host and path (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTransportForwardsLogTraceIDs: a request without a span, to which the
// access log gave trace IDs for its lines, sends them downstream as its
// traceparent, so that both services' lines share one trace_id.
func TestTransportForwardsLogTraceIDs(t *testing.T) {
	srv, got := downstream(t)
	tn, _ := tenant.New("acme", tenant.Tier{})
	ctx := verifiedContext(t, tn, "caller.token.sig")
	info := &request.FromContext(ctx).Info
	info.ID = "req-1"
	info.TraceID = [16]byte{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	info.SpanID = [8]byte{0xbb, 1, 2, 3, 4, 5, 6, 7}
	info.TraceFlags = 1
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: &tenant.Transport{Base: srv.Client().Transport}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tp := got.header.Get("Traceparent"); tp != "00-aa0102030405060708090a0b0c0d0e0f-bb01020304050607-01" {
		t.Errorf("traceparent = %q", tp)
	}
}
