package tenancy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/internal/stacktest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

func TestNewRefusesMistakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []tenancy.Option
		want string
	}{
		{"no part", nil, "at least one part"},
		{"nil logger", []tenancy.Option{tenancy.WithAccessLog(nil)}, "WithAccessLog"},
		{"nil recorder", []tenancy.Option{tenancy.WithMeter(nil)}, "WithMeter"},
		{"nil verifier", []tenancy.Option{tenancy.WithAuthz(nil)}, "WithAuthz"},
		{"nil resolver", []tenancy.Option{tenancy.WithResolver(nil)}, "WithResolver"},
		{"nil limiter", []tenancy.Option{tenancy.WithThrottle(nil)}, "WithThrottle"},
		{"nil credentials", []tenancy.Option{tenancy.WithCredentials(nil)}, "WithCredentials"},
		{"nil route", []tenancy.Option{tenancy.WithAccessLog(slog.Default()), tenancy.WithRoute(nil)}, "WithRoute"},
		{"no bypass path", []tenancy.Option{tenancy.WithAccessLog(slog.Default()), tenancy.WithBypass()}, "WithBypass: no path"},
		{"relative bypass path", []tenancy.Option{tenancy.WithAccessLog(slog.Default()), tenancy.WithBypass("/readyz", "healthz")}, `WithBypass: path "healthz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tenancy.New(tc.opts...)
			if err == nil || s != nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "tenancy: ") {
				t.Errorf("New = %v, %v; want an error naming %s", s, err, tc.want)
			}
		})
	}
	s, err := tenancy.New(tenancy.WithAccessLog(slog.Default()), nil) // nil options are ignored
	if err != nil || s == nil {
		t.Errorf("New with a nil option = %v, %v", s, err)
	}
}

// fixture is a service behind the whole stack, with its logs and usage.
type fixture struct {
	*stacktest.Fixture
	handler http.Handler
}

func newFixture(t *testing.T, resolver tenant.Resolver) *fixture {
	t.Helper()
	f := &fixture{Fixture: stacktest.New(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t/{tenant}/orders", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "[]") })
	opts := f.Options(t)
	if resolver != nil {
		opts = append(opts, tenancy.WithResolver(resolver))
	}
	s, err := tenancy.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.handler = s.Wrap(mux)
	return f
}

func (f *fixture) get(path, token string) int {
	return stacktest.Do(f.handler, http.MethodGet, path, token).Code
}

// TestStackServeMux: an http.ServeMux inside the stack passes the
// scenario every router adapter passes.
func TestStackServeMux(t *testing.T) {
	f := stacktest.New(t)
	s, err := tenancy.New(f.Options(t)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t/{tenant}/orders", stacktest.Tenant)
	f.CheckRouter(t, s.Wrap(mux), "GET /t/{tenant}/orders")
}

// TestStackBypass: a health check on a bypassed path is answered without
// a token, logged nowhere and metered nowhere; other paths, one beside it
// included, still go through every part.
func TestStackBypass(t *testing.T) {
	f := stacktest.New(t)
	s, err := tenancy.New(append(f.Options(t), tenancy.WithBypass("/healthz"))...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /healthz/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	h := s.Wrap(mux)
	for range 3 {
		if w := stacktest.Do(h, http.MethodGet, "/healthz", ""); w.Code != http.StatusOK || w.Body.String() != "ok" {
			t.Fatalf("GET /healthz: %d %q, want 200 ok", w.Code, w.Body)
		}
	}
	if w := stacktest.Do(h, http.MethodGet, "/healthz/", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("GET /healthz/ without a token: %d, want 401", w.Code)
	}
	if lines := f.Lines(t); len(lines) != 1 || lines[0]["route"] != "GET /healthz/" {
		t.Errorf("access lines %v, want only the one of /healthz/", lines)
	}
	counts := f.Counts(t)
	if len(counts) != 1 || counts[" http.requests.denied GET /healthz/ authz:no_token"] != 1 {
		t.Errorf("metered %v, want only the refusal of /healthz/", counts)
	}
}

// TestStackSeesEveryDecision: the access log and the meter, outside,
// name the route, the tenant and the refusal of every request, those the
// layers inside refused before the router included.
func TestStackSeesEveryDecision(t *testing.T) {
	path, err := tenant.PathPrefix("/t/")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, path)
	acme := f.Issuer.MustMint("acme", "basic")
	want := []struct {
		path, token string
		status      int
		reason      string // rejected_by:reject_reason, "" when served
	}{
		{"/t/acme/orders", acme, 200, ""},
		{"/t/acme/orders", acme, 200, ""},
		{"/t/acme/orders", acme, 429, "throttle:rate"},
		{"/t/acme/orders", "", 401, "authz:no_token"},
		{"/t/globex/orders", f.Issuer.MustMint("acme", "basic"), 403, "tenant:tenant_mismatch"},
	}
	for _, w := range want {
		if got := f.get(w.path, w.token); got != w.status {
			t.Fatalf("GET %s: %d, want %d", w.path, got, w.status)
		}
	}
	lines := f.Lines(t)
	if len(lines) != len(want) {
		t.Fatalf("%d access lines for %d requests", len(lines), len(want))
	}
	for i, w := range want {
		l := lines[i]
		reason := ""
		if l["rejected_by"] != nil {
			reason = l["rejected_by"].(string) + ":" + l["reject_reason"].(string)
		}
		if l["route"] != "GET /t/{tenant}/orders" || l["status"] != float64(w.status) || reason != w.reason {
			t.Errorf("line %d: route %v, status %v, refusal %q; want the route, %d, %q", i, l["route"], l["status"], reason, w.status, w.reason)
		}
		if w.status != 401 && l["tenant_id"] != "acme" {
			t.Errorf("line %d names tenant %v, want acme", i, l["tenant_id"])
		}
	}

	counts := f.Counts(t)
	wantCounts := map[string]float64{
		"acme http.requests GET /t/{tenant}/orders ":                              2,
		"acme http.requests.denied GET /t/{tenant}/orders throttle:rate":          1,
		"acme http.requests.denied GET /t/{tenant}/orders tenant:tenant_mismatch": 1,
		" http.requests.denied GET /t/{tenant}/orders authz:no_token":             1,
	}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("metered %q = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
}

// TestHandWiredOrderChecked: wired by hand, a layer wrapped around one
// that belongs outside it panics at once, naming the fix; the stack never
// reports anything.
func TestHandWiredOrderChecked(t *testing.T) {
	iss := authztest.Start(t)
	v := iss.Verifier(t)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "logging.AccessLog runs inside authz.Middleware") || !strings.Contains(msg, "tenancy.New") {
			t.Errorf("panic %q, want one naming the order and tenancy.New", msg)
		}
	}()
	authz.Middleware(v)(logging.AccessLog(logger)(http.NotFoundHandler()))
}

// TestThrottleOutsideAuthzReported: a throttle outside authz, with a
// router between them that no construction check sees through, refuses
// every request; the first refusal is reported once, naming the fix.
func TestThrottleOutsideAuthzReported(t *testing.T) {
	reported := requesttest.CaptureReports(t)

	iss := authztest.Start(t)
	limiter, err := throttle.New(tenant.DefaultTiers, map[string]throttle.Limits{
		"basic": {Rate: 10, Burst: 10}, "standard": {Rate: 10, Burst: 10}, "premium": {Rate: 10, Burst: 10}, "platinum": {Rate: 10, Burst: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	inner := http.NewServeMux()
	inner.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {})
	router := http.NewServeMux()
	router.Handle("/", authz.Middleware(iss.Verifier(t))(inner))
	h := limiter.Middleware()(router)
	token := iss.MustMint("acme", "premium")
	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d: the misordered throttle was expected to refuse", w.Code)
		}
	}
	if reports := reported(); len(reports) != 1 || !strings.Contains(reports[0], "throttle") || !strings.Contains(reports[0], "tenancy.New") {
		t.Errorf("reports = %q, want one naming the throttle and the fix", reports)
	}
}

// TestStackCredentialsInnermost: the credentials middleware runs last,
// after authz has set the tenant and the throttle has let the request
// through, so it is never asked for a request refused before it.
func TestStackCredentialsInnermost(t *testing.T) {
	iss := authztest.Start(t)
	limiter, err := throttle.New(tenant.DefaultTiers, map[string]throttle.Limits{
		"basic": {Rate: 1, Burst: 1}, "standard": {Rate: 1, Burst: 1}, "premium": {Rate: 1, Burst: 1}, "platinum": {Rate: 1, Burst: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	creds := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tn, _ := tenant.FromContext(r.Context())
			asked = append(asked, tn.ID)
			next.ServeHTTP(w, r)
		})
	}
	s, err := tenancy.New(tenancy.WithCredentials(creds), tenancy.WithThrottle(limiter), tenancy.WithAuthz(iss.Verifier(t)))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Wrap(http.NotFoundHandler())
	token := iss.MustMint("acme", "premium")
	for _, tok := range []string{token, token, ""} { // allowed, throttled, no token
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	if len(asked) != 1 || asked[0] != "acme" {
		t.Errorf("credentials asked for %q, want once, for acme", asked)
	}
}

// TestRefusalDetailLogged: the access line and the audit event say which
// claim or check refused a token, never the token or the claim's value.
func TestRefusalDetailLogged(t *testing.T) {
	f := stacktest.New(t)
	logs := &syncbuf.Buffer{}
	audits := logging.NewAuditor(logging.NewJSONHandler(logs, nil))
	s, err := tenancy.New(
		tenancy.WithAccessLog(slog.New(logging.NewHandler(logging.NewJSONHandler(logs, nil))), logging.WithAuditor(audits)),
		tenancy.WithAuthz(f.Issuer.Verifier(t)),
	)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Wrap(http.NotFoundHandler())
	token := f.Issuer.MustMint("acme", "gold-plated")
	if w := stacktest.Do(h, http.MethodGet, "/", token); w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", w.Code)
	}
	out := logs.String()
	if strings.Contains(out, "gold-plated") || strings.Contains(out, token[len(token)-20:]) {
		t.Errorf("the logs hold the claim's value or the token:\n%s", out)
	}
	var details []string
	for line := range strings.Lines(out) {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if d, _ := l["reject_detail"].(string); d != "" {
			details = append(details, d)
		}
	}
	want := `authz: tier claim missing or invalid: claim "custom:tenantTier" names an unknown tier`
	if len(details) != 2 || details[0] != want || details[1] != want {
		t.Errorf("reject_detail of the access line and the audit event: %q, want %q twice", details, want)
	}
}
