package authz_test

import (
	"errors"
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

// flakyJWKS serves iss's JWK Set while up, 503 otherwise, and counts
// the requests it gets.
func flakyJWKS(t *testing.T, iss *authztest.Issuer) (_ *httptest.Server, up *atomic.Bool, fetches *atomic.Int32) {
	up, fetches = new(atomic.Bool), new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		set, err := iss.JWKS(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(set)
	}))
	t.Cleanup(srv.Close)
	return srv, up, fetches
}

// TestStartWithoutKeys: with the identity provider down, the verifier
// starts anyway and answers 503 with Retry-After until the keys arrive;
// a request after the provider is back makes it try at once, and Ready
// says when it has them.
func TestStartWithoutKeys(t *testing.T) {
	iss := authztest.Start(t)
	jwks, up, _ := flakyJWKS(t, iss)
	var mu sync.Mutex
	var reports []error
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	v, err := authz.NewVerifier(t.Context(), iss.URL(),
		authz.WithAudience(iss.Audience()),
		authz.WithJWKSURL(jwks.URL),
		authz.WithStartWithoutKeys(),
		authz.WithClock(func() time.Time { return time.Unix(0, clock.Load()) }),
		authz.WithRefreshErrorHandler(func(err error) {
			mu.Lock()
			reports = append(reports, err)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatalf("NewVerifier with the provider down: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	select {
	case <-v.Ready():
		t.Fatal("Ready before any key was fetched")
	default:
	}
	mu.Lock()
	if len(reports) != 1 {
		t.Errorf("%d reports of the failed first fetch, want 1", len(reports))
	}
	mu.Unlock()

	h := authz.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	token := iss.MustMint("acme", "basic")
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	if w := serve(); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "5" || !strings.Contains(w.Body.String(), "authz-unavailable") {
		t.Fatalf("before the keys: %d %v %s", w.Code, w.Header(), w.Body)
	}

	up.Store(true)
	clock.Add(int64(2 * time.Second)) // past the nudge interval
	if w := serve(); w.Code != http.StatusServiceUnavailable {
		t.Errorf("the request that asks for a fetch: %d, want 503 (it does not wait)", w.Code)
	}
	select {
	case <-v.Ready():
	case <-time.After(time.Minute): // a bound on failure, not a wait for time to pass
		t.Fatal("no keys a minute after the provider came back and a request asked")
	}
	if w := serve(); w.Code != http.StatusOK {
		t.Errorf("with the keys: %d %s", w.Code, w.Body)
	}
}

// TestStartWithoutKeysDefaultFailsFast: without the option, a provider
// that cannot be reached fails NewVerifier; with it, mistakes that need no
// network still do, and Close ends the background fetch (goleak).
func TestStartWithoutKeysDefaultFailsFast(t *testing.T) {
	iss := authztest.Start(t)
	jwks, _, _ := flakyJWKS(t, iss)
	if _, err := authz.NewVerifier(t.Context(), iss.URL(), authz.WithAudience(iss.Audience()), authz.WithJWKSURL(jwks.URL)); err == nil {
		t.Error("NewVerifier succeeded with the JWK Set unreachable")
	}
	if _, err := authz.NewVerifier(t.Context(), iss.URL(), authz.WithJWKSURL(jwks.URL), authz.WithStartWithoutKeys()); err == nil || !strings.Contains(err.Error(), "no audience") {
		t.Errorf("NewVerifier without an audience = %v, want the mistake reported", err)
	}
	if _, err := authz.NewVerifier(t.Context(), iss.URL(), authz.WithAudience(iss.Audience()), authz.WithJWKSURL(jwks.URL),
		authz.WithAlgorithms("none"), authz.WithStartWithoutKeys()); err == nil {
		t.Error("NewVerifier with an unknown algorithm succeeded")
	}
	v, err := authz.NewVerifier(t.Context(), iss.URL(), authz.WithAudience(iss.Audience()), authz.WithJWKSURL(jwks.URL),
		authz.WithStartWithoutKeys(), authz.WithRefreshErrorHandler(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), iss.MustMint("acme", "basic")); !errors.Is(err, authz.ErrKeysUnavailable) {
		t.Errorf("Verify without keys = %v, want ErrKeysUnavailable", err)
	}
	v.Close()
}
