package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
)

func TestPricesPerTier(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, nil)

	for _, c := range []struct {
		tenant, tier, path string
		want               product
	}{
		{"globex", "basic", "/products/anvil", product{Item: "anvil", UnitPriceCents: 5000, TenantID: "globex"}},
		{"initech", "standard", "/products/anvil", product{Item: "anvil", UnitPriceCents: 5000, TenantID: "initech"}},
		{"acme", "premium", "/products/anvil", product{Item: "anvil", UnitPriceCents: 4500, TenantID: "acme"}},
		{"umbrella", "platinum", "/products/anvil", product{Item: "anvil", UnitPriceCents: 4000, TenantID: "umbrella"}},
		// 12999 less 10 % is 11699.1, less 20 % 10399.2: rounded to cents.
		{"globex", "basic", "/products/rocket%20skates", product{Item: "rocket skates", UnitPriceCents: 12999, TenantID: "globex"}},
		{"acme", "premium", "/products/rocket%20skates", product{Item: "rocket skates", UnitPriceCents: 11699, TenantID: "acme"}},
		{"umbrella", "platinum", "/products/rocket%20skates", product{Item: "rocket skates", UnitPriceCents: 10399, TenantID: "umbrella"}},
		// 350 less 10 % is exactly 315.
		{"acme", "premium", "/products/bird%20seed", product{Item: "bird seed", UnitPriceCents: 315, TenantID: "acme"}},
	} {
		tok := iss.MustMint(c.tenant, c.tier)
		r := svc.get(t, c.path, tok, nil)
		if diff := cmp.Diff(c.want, decodeProduct(t, r)); diff != "" {
			t.Errorf("%s on %s: GET %s (-want +got):\n%s", c.tenant, c.tier, c.path, diff)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store: prices differ by tenant", c.path, cc)
		}
	}
}

func TestUnknownItemIsNotFound(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, nil)
	tok := iss.MustMint("acme", "premium")

	r := svc.get(t, "/products/flux%20capacitor", tok, nil)
	p := servicetest.WantProblem(t, r, http.StatusNotFound)
	if p.Detail != "No product with this name." {
		t.Errorf("detail %q", p.Detail)
	}
	if strings.Contains(string(r.Body), "flux") {
		t.Errorf("the 404 echoes the item: %s", r.Body)
	}
	// Item names are exact: no case folding, no trimming.
	servicetest.WantProblem(t, svc.get(t, "/products/Anvil", tok, nil), http.StatusNotFound)
	servicetest.WantProblem(t, svc.get(t, "/products/anvil%20", tok, nil), http.StatusNotFound)

	// Other paths: 404 with a token, 401 without, so that an anonymous
	// caller learns nothing about the routes.
	servicetest.WantProblem(t, svc.get(t, "/orders", tok, nil), http.StatusNotFound)
	servicetest.WantProblem(t, svc.get(t, "/orders", "", nil), http.StatusUnauthorized)
}

func TestTokenRequired(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, nil)
	other := authztest.Start(t, authztest.WithAudience(iss.Audience()))

	for _, c := range []struct {
		name, token, challenge string
	}{
		{"no token", "", "Bearer"},
		{"another issuer's token", other.MustMint("acme", "premium"), `Bearer error="invalid_token"`},
		{"expired", iss.MustMint("acme", "premium", authztest.WithExpiry(-time.Minute)), `Bearer error="invalid_token"`},
		{"another audience", iss.MustMint("acme", "premium", authztest.WithClaim("aud", "other-api")), `Bearer error="invalid_token"`},
	} {
		r := svc.get(t, "/products/anvil", c.token, nil)
		servicetest.WantProblem(t, r, http.StatusUnauthorized)
		if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, c.challenge) {
			t.Errorf("%s: WWW-Authenticate %q, want it to start with %q", c.name, got, c.challenge)
		}
	}

	// Each refusal has an access line at WARN naming authz, and an audit
	// event.
	svc.Stop(t)
	lines := servicetest.RequestLines(svc.Lines(t))
	var access, audits int
	for _, l := range lines {
		switch {
		case l.Str("log_type") == "audit":
			audits++
			if l.Str("outcome") != "denied" {
				t.Errorf("audit line without outcome denied: %v", l)
			}
		case l.Str("msg") == "request":
			access++
			if l.Str("level") != "WARN" || l["status"] != float64(401) || l.Str("rejected_by") != "authz" || l.Str("route") != "GET /products/{item}" {
				t.Errorf("access line of a refusal: %v", l)
			}
		default:
			t.Errorf("unexpected line: %v", l)
		}
	}
	if access != 4 || audits != 4 {
		t.Errorf("%d access and %d audit lines, want 4 of each", access, audits)
	}
}

func TestHealthz(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, nil)
	r := svc.get(t, "/healthz", "", nil)
	if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != `{"status":"ok"}` {
		t.Fatalf("GET /healthz: %d %s", r.Status, r.Body)
	}
	// Load balancers ask every few seconds: no access line.
	svc.Stop(t)
	if lines := servicetest.RequestLines(svc.Lines(t)); len(lines) != 0 {
		t.Errorf("GET /healthz logged %v", lines)
	}
}

// TestForgedBaggageIsIgnored sends acme's token with baggage (and a tenant
// header) naming globex. The catalog acts for acme, the tenant of the
// verified token, and globex appears nowhere in its logs.
func TestForgedBaggageIsIgnored(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, nil)
	tok := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	forged := http.Header{
		"Baggage":     {"tenant.id=globex"},
		"X-Tenant-Id": {"globex"},
	}
	got := decodeProduct(t, svc.get(t, "/products/anvil", tok, forged))
	// acme's premium price, not globex's basic one.
	if diff := cmp.Diff(product{Item: "anvil", UnitPriceCents: 4500, TenantID: "acme"}, got); diff != "" {
		t.Errorf("product (-want +got):\n%s", diff)
	}

	svc.Stop(t)
	out := svc.Stdout.String()
	lines := servicetest.RequestLines(servicetest.ParseLines(t, out))
	if len(lines) != 2 {
		t.Fatalf("%d request lines, want the handler's and the access line:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if l.Str("tenant_id") != "acme" || l.Str("tenant_tier") != "premium" || l.Str("user_id") != "alice" {
			t.Errorf("line %q: tenant_id %q, tenant_tier %q, user_id %q; want acme, premium, alice", l.Str("msg"), l.Str("tenant_id"), l.Str("tenant_tier"), l.Str("user_id"))
		}
	}
	if strings.Contains(out, "globex") {
		t.Errorf("globex appears in the logs:\n%s", out)
	}
}

func TestLogLevel(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"LOG_LEVEL": "warn"})
	tok := iss.MustMint("acme", "premium")

	decodeProduct(t, svc.get(t, "/products/anvil", tok, nil))
	servicetest.WantProblem(t, svc.get(t, "/products/anvil", "", nil), http.StatusUnauthorized)
	svc.Stop(t)
	var msgs []string
	for _, l := range svc.Lines(t) {
		msgs = append(msgs, l.Str("level")+" "+l.Str("msg"))
	}
	// The answered request logged nothing, nor did the start and the
	// stop. A refusal is a WARN access line; its audit event is written
	// whatever the level. They come on two streams, in either order.
	slices.Sort(msgs)
	if diff := cmp.Diff([]string{"INFO audit", "WARN request"}, msgs); diff != "" {
		t.Errorf("lines with LOG_LEVEL=warn (-want +got):\n%s", diff)
	}
}

// TestStoppedStdoutHoldsNoRequest runs the catalog with a stdout nobody
// reads: /healthz and price quotes still answer, their log lines waiting
// in the log stream, and a refused token's audit event in the audit
// stream. Once stdout reads again, every line arrives whole, and the
// catalog stops cleanly.
func TestStoppedStdoutHoldsNoRequest(t *testing.T) {
	iss := startIssuer(t)
	st, stalled := servicetest.StartStalled(t, servicetest.IssuerEnv(iss, nil), catalog())
	svc := &service{st}
	// A request held by stdout fails the test instead of waiting a minute.
	svc.Client.Timeout = 10 * time.Second
	tok := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	if r := svc.get(t, "/healthz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("GET /healthz: status %d", r.Status)
	}
	const quotes = 5
	for range quotes {
		decodeProduct(t, svc.get(t, "/products/anvil", tok, nil))
	}
	servicetest.WantProblem(t, svc.get(t, "/products/anvil", "", nil), http.StatusUnauthorized)
	if out := svc.Stdout.String(); out != "" {
		t.Fatalf("stdout is stalled, yet it received:\n%s", out)
	}

	stalled.Resume()
	svc.Stop(t)
	lines := svc.Lines(t) // whole JSON objects, every one
	for _, c := range []struct {
		line logLine
		want int
	}{
		{logLine{"msg": "catalog service started"}, 1},
		{logLine{"msg": "price quoted"}, quotes},
		{logLine{"msg": "request", "status": 200.0}, quotes},
		{logLine{"msg": "request", "status": 401.0}, 1},
		{logLine{"msg": "audit", "status": 401.0}, 1},
		{logLine{"msg": "catalog service stopped"}, 1},
	} {
		if got := len(servicetest.LinesWhere(lines, c.line)); got != c.want {
			t.Errorf("%d lines with %v, want %d", got, c.line, c.want)
		}
	}
}
