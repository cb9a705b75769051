package throttle_test

import (
	"net/http"
	"testing"

	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// TestClaimedTenantSpendsNoBudget: an anonymous flood that names its
// victim in the Host header (a claimed tenant) never spends the victim's
// budget: it is refused as tenant-less, or limited by address with
// WithAnonymousLimits. WithClaimedTenants opts in to spending it.
func TestClaimedTenantSpendsNoBudget(t *testing.T) {
	flood := func(t *testing.T, l *throttle.Limiter, victim tenant.Tenant) (codes map[int]int) {
		t.Helper()
		h := l.Middleware()(okHandler)
		claimed := victim
		claimed.Source = tenant.SourceClaimed
		codes = map[int]int{}
		for range 50 {
			w, _ := serve(h, &claimed, get("/"))
			codes[w.Code]++
		}
		return codes
	}
	victimKeepsBurst := func(t *testing.T, l *throttle.Limiter, victim tenant.Tenant, want int) {
		t.Helper()
		h := l.Middleware()(okHandler)
		verified := victim
		verified.Source = tenant.SourceToken
		got := 0
		for range basic.Burst + 5 {
			if w, _ := serve(h, &verified, get("/")); w.Code == http.StatusOK {
				got++
			}
		}
		if got != want {
			t.Errorf("the verified victim got %d admissions after the flood, want %d", got, want)
		}
	}

	t.Run("default", func(t *testing.T) {
		l, victim := soloLimiter(t, newClock(start), basic)
		if codes := flood(t, l, victim); codes[http.StatusUnauthorized] != 50 {
			t.Errorf("flood answered %v, want 50 × 401", codes)
		}
		victimKeepsBurst(t, l, victim, basic.Burst)
	})
	t.Run("anonymous limits", func(t *testing.T) {
		l, victim := soloLimiter(t, newClock(start), basic, throttle.WithAnonymousLimits(throttle.Limits{Rate: 1, Burst: 3}))
		if codes := flood(t, l, victim); codes[http.StatusOK] != 3 || codes[http.StatusTooManyRequests] != 47 {
			t.Errorf("flood answered %v, want 3 × 200 by address, then 429", codes)
		}
		victimKeepsBurst(t, l, victim, basic.Burst)
	})
	t.Run("WithClaimedTenants", func(t *testing.T) {
		l, victim := soloLimiter(t, newClock(start), basic, throttle.WithClaimedTenants())
		if codes := flood(t, l, victim); codes[http.StatusOK] != basic.Burst {
			t.Errorf("flood answered %v, want the tenant's burst of %d admitted", codes, basic.Burst)
		}
		victimKeepsBurst(t, l, victim, 0)
	})
}
