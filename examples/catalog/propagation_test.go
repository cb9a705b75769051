package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
)

// inbound records the headers of the requests the catalog received.
type inbound struct {
	mu      sync.Mutex
	headers []http.Header
}

func (in *inbound) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		in.headers = append(in.headers, r.Header.Clone())
		in.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (in *inbound) all() []http.Header {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]http.Header(nil), in.headers...)
}

// caller is a tiny upstream service built like orders: the access log,
// authz, and a handler that asks the catalog for a price through
// tenant.Transport with its request's context.
type caller struct {
	url    string
	stdout *syncBuffer
}

func startCaller(t *testing.T, iss *authztest.Issuer, catalogURL string) *caller {
	t.Helper()
	c := &caller{stdout: new(syncBuffer)}
	log := slog.New(logging.NewHandler(logging.NewJSONHandler(c.stdout, nil)))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	catalog := &http.Client{Transport: &tenant.Transport{Base: tr}, Timeout: 10 * time.Second}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /quote/{item}", func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "asking the catalog")
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, catalogURL+"/products/"+url.PathEscape(r.PathValue("item")), nil)
		if err != nil {
			http.Error(w, "bad item", http.StatusBadRequest)
			return
		}
		resp, err := catalog.Do(req)
		if err != nil {
			log.ErrorContext(r.Context(), "catalog call failed", "error", err)
			http.Error(w, "catalog call failed", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		log.InfoContext(r.Context(), "catalog answered", "status", resp.StatusCode)
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	stack, err := tenancy.New(tenancy.WithAccessLog(log, logging.WithAuditor(nil)), tenancy.WithAuthz(iss.Verifier(t)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(stack.Wrap(mux))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

var (
	traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	spanIDPattern  = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// TestPropagation sends one request to a caller service, which asks the
// catalog through tenant.Transport. The catalog verifies the caller's very
// token and answers for its tenant, and the two services' log lines for
// that request share one trace_id, each service with a span_id of its own.
func TestPropagation(t *testing.T) {
	iss := startIssuer(t)
	var in inbound
	svc := startForIssuer(t, iss, nil, withHandlerWrap(in.wrap))
	up := startCaller(t, iss, svc.URL)
	tok := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	req, err := http.NewRequest(http.MethodGet, up.url+"/quote/anvil", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	got := decodeProduct(t, servicetest.Send(t, servicetest.NewClient(t), req))
	if diff := cmp.Diff(product{Item: "anvil", UnitPriceCents: 4500, TenantID: "acme"}, got); diff != "" {
		t.Errorf("product through the caller (-want +got):\n%s", diff)
	}

	// The catalog received the caller's token itself, and the tenant in
	// the baggage (information only).
	headers := in.all()
	if len(headers) != 1 {
		t.Fatalf("the catalog received %d requests, want 1", len(headers))
	}
	h := headers[0]
	if h.Get("Authorization") != "Bearer "+tok {
		t.Errorf("the catalog did not receive the caller's token")
	}
	if b := h.Get("Baggage"); !strings.Contains(b, "tenant.id=acme") {
		t.Errorf("Baggage %q, want tenant.id=acme", b)
	}

	// The caller's lines: both handler lines and the access line, one
	// trace and one span.
	svc.Stop(t) // every line the catalog logged is on its stdout
	callerLines := servicetest.RequestLines(servicetest.ParseLines(t, up.stdout.String()))
	catalogLines := servicetest.RequestLines(svc.Lines(t))
	if len(callerLines) != 3 || len(catalogLines) != 2 {
		t.Fatalf("%d caller and %d catalog request lines, want 3 and 2:\ncaller:\n%s\ncatalog:\n%s",
			len(callerLines), len(catalogLines), up.stdout, svc.Stdout)
	}
	traceID, callerSpan := callerLines[0].Str("trace_id"), callerLines[0].Str("span_id")
	if !traceIDPattern.MatchString(traceID) || !spanIDPattern.MatchString(callerSpan) {
		t.Fatalf("caller line without a trace: %v", callerLines[0])
	}
	catalogSpan := catalogLines[0].Str("span_id")
	if !spanIDPattern.MatchString(catalogSpan) {
		t.Fatalf("catalog line without a span: %v", catalogLines[0])
	}
	if catalogSpan == callerSpan {
		t.Errorf("both services logged span_id %s; want a span of its own for the catalog", callerSpan)
	}
	check := func(service string, lines []logLine, span string) {
		for _, l := range lines {
			if l.Str("trace_id") != traceID || l.Str("span_id") != span {
				t.Errorf("%s line %q: trace_id %s span_id %s, want %s %s", service, l.Str("msg"), l.Str("trace_id"), l.Str("span_id"), traceID, span)
			}
			if l.Str("tenant_id") != "acme" || l.Str("user_id") != "alice" {
				t.Errorf("%s line %q: tenant_id %q user_id %q, want acme alice", service, l.Str("msg"), l.Str("tenant_id"), l.Str("user_id"))
			}
		}
	}
	check("caller", callerLines, callerSpan)
	check("catalog", catalogLines, catalogSpan)

	// The catalog's span is a child of the caller's: traceparent names
	// the caller's span as the parent.
	if tp := h.Get("Traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-"+callerSpan+"-") {
		t.Errorf("Traceparent %q, want 00-%s-%s-..", tp, traceID, callerSpan)
	}
}

// TestTransportWithoutToken calls the catalog through tenant.Transport from
// a context with no token, as a background job would: the call fails
// before anything is sent.
func TestTransportWithoutToken(t *testing.T) {
	iss := startIssuer(t)
	var in inbound
	svc := startForIssuer(t, iss, nil, withHandlerWrap(in.wrap))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: &tenant.Transport{Base: tr}, Timeout: 10 * time.Second}

	// A tenant without the token it came with is not enough either.
	acme, err := tenant.New("acme", tiers.MustLookup("premium"))
	if err != nil {
		t.Fatal(err)
	}
	for name, ctx := range map[string]context.Context{
		"empty context":       context.Background(),
		"tenant but no token": tenant.NewContext(context.Background(), acme),
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, svc.URL+"/products/anvil", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: status %d, want tenant.ErrNoCredential", name, resp.StatusCode)
			continue
		}
		if !errors.Is(err, tenant.ErrNoCredential) {
			t.Errorf("%s: error %v, want tenant.ErrNoCredential", name, err)
		}
	}
	if n := len(in.all()); n != 0 {
		t.Errorf("the catalog received %d requests, want none", n)
	}
}
