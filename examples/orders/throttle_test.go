package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/internal/testservers"
)

// slowTiers is a TIERS_FILE whose budgets come back at one request per
// 1000 s: no test lasts long enough to see one come back, so bursts are
// exact without a fake clock or a sleep.
const slowTiers = `{
	"basic":    {"rate": 0.001, "burst": 10},
	"standard": {"rate": 0.001, "burst": 20},
	"premium":  {"rate": 0.001, "burst": 100},
	"platinum": {"rate": 0.001, "burst": 1000}
}`

// rateLimitRemaining reads r= of the "rate" item of a RateLimit field,
// such as `"rate";r=9;t=1000`.
var rateLimitRemaining = regexp.MustCompile(`^"rate";r=(\d+);t=(\d+)$`)

// spend sends the i-th request of a tenant: orders placed and listed in
// turn, so that both kinds of request spend from the same budget.
func (s *service) spend(t *testing.T, token string, i int) response {
	t.Helper()
	if i%2 == 0 {
		return s.do(t, "POST", "/orders", token, fmt.Sprintf(`{"item":"anvil","quantity":%d}`, i+1))
	}
	return s.do(t, "GET", "/orders", token, "")
}

// wantAdmitted checks that r got through the throttle with remaining
// requests left of a burst of burst.
func wantAdmitted(t *testing.T, who string, r response, burst, remaining int) {
	t.Helper()
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("%s: status %d, want 201 or 200; body %s", who, r.Status, r.Body)
	}
	wantPolicy(t, who, r, burst)
	if got, want := r.Header.Get("RateLimit"), fmt.Sprintf(`"rate";r=%d;`, remaining); !strings.HasPrefix(got, want) {
		t.Errorf("%s: RateLimit %q, want it to start with %q", who, got, want)
	}
}

// wantPolicy checks the RateLimit-Policy field of a tier with rate 0.001:
// burst requests, refilled over burst×1000 s.
func wantPolicy(t *testing.T, who string, r response, burst int) {
	t.Helper()
	if got, want := r.Header.Get("RateLimit-Policy"), fmt.Sprintf(`"rate";q=%d;w=%d`, burst, burst*1000); got != want {
		t.Errorf("%s: RateLimit-Policy %q, want %q", who, got, want)
	}
}

// throttled is the problem document of a 429.
type throttled struct {
	servicetest.Problem
	RetryAfter int `json:"retry_after"`
}

// wantRateLimited checks that r is a 429 of the throttle, with the
// headers and problem document a client needs to back off.
func wantRateLimited(t *testing.T, who string, r response, burst int) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d, want 429; body %s", who, r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", who, ct)
	}
	var p throttled
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: problem: %v in %s", who, err, r.Body)
	}
	if !strings.HasSuffix(p.Type, "#rate-limited") || p.Status != http.StatusTooManyRequests || p.Title == "" || p.Detail == "" {
		t.Errorf("%s: problem %+v, want type …#rate-limited, status 429, a title and a detail", who, p)
	}
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 1000 {
		t.Errorf("%s: Retry-After %q, want 1 to 1000 seconds (one request comes back every 1000 s)", who, r.Header.Get("Retry-After"))
	}
	if p.RetryAfter != retry {
		t.Errorf("%s: retry_after %d in the body, Retry-After %d in the header", who, p.RetryAfter, retry)
	}
	wantPolicy(t, who, r, burst)
	m := rateLimitRemaining.FindStringSubmatch(r.Header.Get("RateLimit"))
	if m == nil || m[1] != "0" {
		t.Errorf("%s: RateLimit %q, want r=0", who, r.Header.Get("RateLimit"))
	}
}

// TestBasicTenantIsThrottled spends the burst of a basic tenant, then sees
// it refused with 429, while a premium tenant sending as many requests in
// the same window is never refused: each tenant has a budget of its own.
func TestBasicTenantIsThrottled(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"TIERS_FILE": writeFile(t, "tiers.json", slowTiers)})
	eve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	const basicBurst, premiumBurst, extra = 10, 100, 5
	acme := 0
	for i := range basicBurst + extra {
		r := svc.spend(t, eve, i)
		who := fmt.Sprintf("globex request %d", i+1)
		if i < basicBurst {
			wantAdmitted(t, who, r, basicBurst, basicBurst-1-i)
		} else {
			wantRateLimited(t, who, r, basicBurst)
		}
		// acme sends as much in the same window and is never refused.
		for range 2 {
			wantAdmitted(t, fmt.Sprintf("acme request %d", acme+1), svc.spend(t, alice, acme), premiumBurst, premiumBurst-1-acme)
			acme++
		}
	}

	// Neither /healthz nor a request without a token spends or reports
	// any budget: the throttle sits behind authz, on the orders routes.
	for _, r := range []response{svc.do(t, "GET", "/healthz", "", ""), svc.do(t, "GET", "/orders", "", "")} {
		if r.Status == http.StatusTooManyRequests || r.Header.Get("RateLimit-Policy") != "" {
			t.Errorf("status %d, RateLimit-Policy %q: want no throttling", r.Status, r.Header.Get("RateLimit-Policy"))
		}
	}
}

// TestOverrideRaisesOneTenantsBurst gives globex a burst of 25 through
// TENANT_OVERRIDES_FILE; initech, on the same tier, keeps the tier's 10.
func TestOverrideRaisesOneTenantsBurst(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{
		"TIERS_FILE":            writeFile(t, "tiers.json", slowTiers),
		"TENANT_OVERRIDES_FILE": writeFile(t, "overrides.json", `{"globex": {"rate": 0.001, "burst": 25}}`),
	})
	for _, c := range []struct {
		tenant string
		burst  int
	}{
		{"globex", 25},
		{"initech", 10},
	} {
		tok := iss.MustMint(c.tenant, "basic", authztest.WithSubject("sam"))
		for i := range c.burst {
			wantAdmitted(t, fmt.Sprintf("%s request %d", c.tenant, i+1), svc.spend(t, tok, i), c.burst, c.burst-1-i)
		}
		wantRateLimited(t, fmt.Sprintf("%s request %d", c.tenant, c.burst+1), svc.spend(t, tok, c.burst), c.burst)
	}
}

// TestLimitsSharedThroughRedis runs two replicas of the service with the
// same REDIS_URL, as two containers behind a load balancer would, and
// sends a basic tenant's requests to each in turn: together they admit the
// tier's burst of 10, not 10 each.
func TestLimitsSharedThroughRedis(t *testing.T) {
	rs := testservers.Redis(t)
	iss := startIssuer(t) // both replicas accept its tokens
	// Should Redis be slow, the basic tier fails closed (503) rather than
	// falling back to 10 per replica, so that a timeout cannot pass for a
	// sharing bug.
	tiersFile := writeFile(t, "tiers.json", strings.Replace(slowTiers,
		`"basic":    {"rate": 0.001, "burst": 10}`,
		`"basic":    {"rate": 0.001, "burst": 10, "on_store_failure": "closed"}`, 1))
	env := map[string]string{"TIERS_FILE": tiersFile, "REDIS_URL": "redis://" + rs.Addr + "/0"}
	replicas := []*service{startForIssuer(t, iss, env), startForIssuer(t, iss, env)}

	// Each replica's first request to Redis dials it and loads the rate
	// script; do that for another tenant, so that globex's requests are
	// decided well within redisstore's 50 ms.
	acme := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	for i, svc := range replicas {
		wantAdmitted(t, fmt.Sprintf("acme on replica %d", i+1), svc.spend(t, acme, 1), 100, 99-i)
	}

	eve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))
	const burst = 10
	admitted := 0
	for i := range 2 * burst {
		svc := replicas[i%2]
		who := fmt.Sprintf("globex request %d, on replica %d", i+1, i%2+1)
		r := svc.spend(t, eve, i)
		if i < burst {
			wantAdmitted(t, who, r, burst, burst-1-i)
			admitted++
		} else {
			wantRateLimited(t, who, r, burst)
		}
	}
	if admitted != burst {
		t.Errorf("the replicas admitted %d requests of globex together, want %d", admitted, burst)
	}

	for i, svc := range replicas {
		svc.Stop(t) // every line logged is on stdout
		out := svc.Stdout.String()
		if !strings.Contains(out, `"limits_store":"redis"`) {
			t.Errorf("replica %d does not log that its limits are in Redis:\n%s", i+1, out)
		}
		if strings.Contains(out, "Redis unavailable") {
			t.Errorf("replica %d lost Redis during the test:\n%s", i+1, out)
		}
	}
}

// TestDevelopmentModeThrottlesBasicTenant runs the banner's loop with the
// embedded tiers: globex, on the basic tier (burst 10, 5 requests/s), gets
// its burst and then 429s.
func TestDevelopmentModeThrottlesBasicTenant(t *testing.T) {
	svc := startService(t, map[string]string{"ADDR": "127.0.0.1:0"})
	out := svc.Stderr.String()
	for _, want := range []string{
		"# tenant acme, tier premium, user alice\n#   limits: 500 requests/s, burst 1000\n",
		"# tenant globex, tier basic, user eve\n#   limits: 5 requests/s, burst 10\n",
		`for i in $(seq 15); do curl -s -o /dev/null -w '%{http_code} ' ` + svc.URL + `/orders -H "Authorization: Bearer $GLOBEX_TOKEN"; done; echo` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner lacks %q:\n%s", want, out)
		}
	}
	var eve string
	for _, m := range exportLine.FindAllStringSubmatch(out, -1) {
		if m[1] == "GLOBEX_TOKEN" {
			eve = m[2]
		}
	}
	if eve == "" {
		t.Fatalf("no GLOBEX_TOKEN in the banner:\n%s", out)
	}

	// The bucket refills at 5/s in real time, so after the burst the loop
	// sees 429s as long as it sends faster than that; 40 requests leave
	// eight seconds of slack.
	var statuses []int
	for range 40 {
		r := svc.do(t, "GET", "/orders", eve, "")
		statuses = append(statuses, r.Status)
		if r.Status == http.StatusTooManyRequests {
			break
		}
	}
	first429 := len(statuses) - 1
	if statuses[first429] != http.StatusTooManyRequests {
		t.Fatalf("40 requests of globex, no 429: %v", statuses)
	}
	if first429 < 10 {
		t.Errorf("globex got 429 after %d requests, want its burst of 10 first: %v", first429, statuses)
	}
}
