package authz_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
)

// tierStore is a service's tenant store as a tier lookup sees it.
type tierStore struct {
	mu    sync.Mutex
	tiers map[string]string
	err   error
	calls atomic.Int32
}

func (s *tierStore) lookup(_ context.Context, id string) (string, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", s.err
	}
	tier, ok := s.tiers[id]
	if !ok {
		return "", fmt.Errorf("%w: no tenant %s", authz.ErrTenantClaim, id)
	}
	return tier, nil
}

func (s *tierStore) set(id, tier string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tiers[id], s.err = tier, err
}

// TestTierLookup: a provider that issues no tier (Keycloak) gets the tier
// from the store, kept for a minute; a tier change reaches requests after
// that; a store that is down answers 503, asked again at the next
// request; a tenant the store does not know is refused with 401.
func TestTierLookup(t *testing.T) {
	iss := authztest.Start(t, authztest.WithClaimMapping(authz.Keycloak()))
	store := &tierStore{tiers: map[string]string{"acme": "premium"}}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	v := iss.Verifier(t, authz.WithTierLookup(store.lookup), authz.WithClock(func() time.Time { return time.Unix(0, clock.Load()) }))
	token := iss.MustMint("acme", "")
	for range 5 {
		got, err := v.Verify(t.Context(), token)
		if err != nil || got.Tier.String() != "premium" {
			t.Fatalf("Verify = %+v, %v; want acme on the store's premium", got, err)
		}
	}
	if n := store.calls.Load(); n != 1 {
		t.Errorf("%d lookups for five requests, want 1", n)
	}

	store.set("acme", "basic", nil)
	clock.Add(int64(authz.DefaultTierLookupTTL + time.Second))
	if got, err := v.Verify(t.Context(), token); err != nil || got.Tier.String() != "basic" {
		t.Errorf("after the tier changed and a minute passed: %+v, %v; want basic", got, err)
	}

	h := authz.Middleware(v)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	serve := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	store.set("acme", "basic", errors.New("dynamodb: throttled"))
	clock.Add(int64(authz.DefaultTierLookupTTL + time.Second))
	before := store.calls.Load()
	for range 2 {
		if w := serve(token); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "5" || w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("store down: %d %v", w.Code, w.Header())
		}
	}
	if n := store.calls.Load() - before; n != 2 {
		t.Errorf("%d lookups for two requests while the store failed, want each asked (2)", n)
	}
	store.set("acme", "gold", nil)
	if _, err := v.Verify(t.Context(), token); !errors.Is(err, authz.ErrTierUnavailable) || !strings.Contains(err.Error(), `"gold"`) {
		t.Errorf("the store names no tier: %v, want ErrTierUnavailable naming it", err)
	}
	if w := serve(iss.MustMint("globex", "")); w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("a tenant the store does not know: %d %v, want 401 invalid_token", w.Code, w.Header())
	}
}

// TestTierLookupOnlyWithoutTierClaim: a token's tier claim wins unless the
// lookup decides always.
func TestTierLookupOnlyWithoutTierClaim(t *testing.T) {
	iss := authztest.Start(t)
	store := &tierStore{tiers: map[string]string{"acme": "platinum"}}
	token := iss.MustMint("acme", "standard")
	got, err := iss.Verifier(t, authz.WithTierLookup(store.lookup)).Verify(t.Context(), token)
	if err != nil || got.Tier.String() != "standard" || store.calls.Load() != 0 {
		t.Errorf("token with a tier: %+v, %v, %d lookups; want the token's tier and no lookup", got, err, store.calls.Load())
	}
	got, err = iss.Verifier(t, authz.WithTierLookup(store.lookup), authz.WithTierLookupAlways()).Verify(t.Context(), token)
	if err != nil || got.Tier.String() != "platinum" {
		t.Errorf("WithTierLookupAlways: %+v, %v; want the store's tier", got, err)
	}
	// Without a tier claim and with the lookup, a token is no longer
	// refused for the missing claim.
	if got, err := iss.Verifier(t, authz.WithTierLookup(store.lookup)).Verify(t.Context(), iss.MustMint("acme", "")); err != nil || got.Tier.String() != "platinum" {
		t.Errorf("token without a tier: %+v, %v", got, err)
	}
}

// TestTierLookupOneCallBounded: a tenant's requests that find no kept
// answer wait for one lookup; the answers kept stay within the bound.
func TestTierLookupOneCallBounded(t *testing.T) {
	iss := authztest.Start(t, authztest.WithClaimMapping(authz.Keycloak()))
	release := make(chan struct{})
	var calls atomic.Int32
	lookup := func(ctx context.Context, id string) (string, error) {
		if calls.Add(1) == 1 {
			<-release
		}
		return "standard", nil
	}
	v := iss.Verifier(t, authz.WithTierLookup(lookup), authz.WithTierLookupCache(time.Minute, 10))
	token := iss.MustMint("acme", "")
	var wg sync.WaitGroup
	var started sync.WaitGroup
	started.Add(20)
	for range 20 {
		wg.Go(func() {
			started.Done()
			if got, err := v.Verify(context.Background(), token); err != nil || got.Tier.String() != "standard" {
				t.Errorf("Verify = %+v, %v", got, err)
			}
		})
	}
	started.Wait()
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		// Each waits for the call in flight, or finds its answer kept.
		t.Errorf("%d lookups for one tenant's concurrent requests, want 1", n)
	}
	for i := range 100 {
		if _, err := v.Verify(t.Context(), iss.MustMint(fmt.Sprintf("tenant-%d", i), "")); err != nil {
			t.Fatal(err)
		}
	}
	if n := authz.TierCacheLen(v); n > 10 {
		t.Errorf("%d tenants' tiers kept, want at most 10", n)
	}
}

// TestTierLookupMistakes: settings that contradict each other are refused
// at construction.
func TestTierLookupMistakes(t *testing.T) {
	iss := authztest.Start(t)
	lookup := func(context.Context, string) (string, error) { return "basic", nil }
	for _, tc := range []struct {
		opts []authz.Option
		want string
	}{
		{[]authz.Option{authz.WithTierLookupAlways()}, "WithTierLookupAlways needs WithTierLookup"},
		{[]authz.Option{authz.WithTierLookup(lookup), authz.WithDefaultTier("basic")}, "keep one"},
		{[]authz.Option{authz.WithTierLookup(lookup), authz.WithTierLookupCache(time.Minute, -1)}, "WithTierLookupCache"},
	} {
		if _, err := iss.NewVerifier(t.Context(), tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewVerifier = %v, want an error naming %q", err, tc.want)
		}
	}
}
