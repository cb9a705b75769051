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
	"github.com/tenancykit/tenancy/tenant"
)

// issuerOptions are the Verifier options of an authztest issuer.
func issuerOptions(iss *authztest.Issuer) []authz.Option {
	return []authz.Option{authz.WithAudience(iss.Audience())}
}

func newIssuers(t *testing.T, opts ...authz.IssuersOption) *authz.Issuers {
	t.Helper()
	is, err := authz.NewIssuers(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { is.Close() })
	return is
}

// TestIssuersAllowList: each token is verified by its own issuer's keys,
// fetched with the issuer's first token; a token of an issuer not allowed
// is refused before anything is fetched from it.
func TestIssuersAllowList(t *testing.T) {
	a, b, other := authztest.Start(t), authztest.Start(t), authztest.Start(t)
	is := newIssuers(t, authz.WithIssuer(a.URL(), issuerOptions(a)...), authz.WithIssuer(b.URL(), issuerOptions(b)...))
	if a.JWKSFetches()+b.JWKSFetches() != 0 {
		t.Fatalf("NewIssuers fetched keys: %d, %d", a.JWKSFetches(), b.JWKSFetches())
	}
	got, err := is.Verify(t.Context(), a.MustMint("acme", "premium"))
	if err != nil || got.ID != "acme" || got.Tier.String() != "premium" {
		t.Fatalf("token of a = %+v, %v", got, err)
	}
	if a.JWKSFetches() != 1 || b.JWKSFetches() != 0 {
		t.Errorf("after a's first token: %d and %d fetches, want 1 and 0", a.JWKSFetches(), b.JWKSFetches())
	}
	if got, err := is.Verify(t.Context(), b.MustMint("globex", "basic")); err != nil || got.ID != "globex" {
		t.Errorf("token of b = %+v, %v", got, err)
	}
	if _, err := is.Verify(t.Context(), other.MustMint("acme", "premium")); !errors.Is(err, authz.ErrIssuer) {
		t.Errorf("token of an issuer not allowed: %v, want ErrIssuer", err)
	}
	if other.JWKSFetches() != 0 {
		t.Errorf("the issuer not allowed was asked for its keys %d times", other.JWKSFetches())
	}
	// A token of a's claiming to be b's is checked with b's keys.
	if _, err := is.Verify(t.Context(), a.MustMint("acme", "premium", authztest.WithClaim("iss", b.URL()))); !errors.Is(err, authz.ErrUnknownKey) && !errors.Is(err, authz.ErrSignature) {
		t.Errorf("a's token naming b as issuer: %v, want refused by b's keys", err)
	}
	for _, bad := range []string{"", "not.a.jwt", "a.%%%.c", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.c2ln"} {
		if _, err := is.Verify(t.Context(), bad); err == nil {
			t.Errorf("Verify(%q) accepted", bad)
		}
	}
}

// TestIssuersBindTenant: a tenant's own issuer issues tokens for that
// tenant alone.
func TestIssuersBindTenant(t *testing.T) {
	pool := authztest.Start(t)
	is := newIssuers(t, authz.WithTenantIssuer(pool.URL(), "acme", issuerOptions(pool)...))
	if _, err := is.Verify(t.Context(), pool.MustMint("acme", "basic")); err != nil {
		t.Errorf("acme's token from acme's pool: %v", err)
	}
	_, err := is.Verify(t.Context(), pool.MustMint("globex", "basic"))
	var ce *authz.ClaimError
	if !errors.Is(err, authz.ErrTenantClaim) || !errors.As(err, &ce) || ce.Claim != "custom:tenantId" {
		t.Errorf("globex's token from acme's pool: %v, want ErrTenantClaim naming the tenant claim", err)
	}
}

// TestIssuersLookup: a lookup decides for issuers the allow-list does not
// name; its answers are kept, refusals included, and a failed lookup is
// asked again.
func TestIssuersLookup(t *testing.T) {
	pool := authztest.Start(t)
	var calls atomic.Int32
	var storeDown atomic.Bool
	lookup := func(_ context.Context, issuer string) (authz.IssuerConfig, error) {
		calls.Add(1)
		switch {
		case storeDown.Load():
			return authz.IssuerConfig{}, errors.New("tenant store: connection refused")
		case issuer == pool.URL():
			return authz.IssuerConfig{Tenant: "globex", Options: issuerOptions(pool)}, nil
		}
		return authz.IssuerConfig{}, fmt.Errorf("%w: no tenant has it", authz.ErrIssuer)
	}
	is := newIssuers(t, authz.WithIssuerLookup(lookup))
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	authz.SetIssuersClock(is, func() time.Time { return now })

	for range 3 {
		if _, err := is.Verify(t.Context(), pool.MustMint("globex", "basic")); err != nil {
			t.Fatal(err)
		}
	}
	forged := pool.MustMint("globex", "basic", authztest.WithClaim("iss", "https://evil.example/pool"))
	for range 3 {
		if _, err := is.Verify(t.Context(), forged); !errors.Is(err, authz.ErrIssuer) {
			t.Fatalf("made-up issuer: %v, want ErrIssuer", err)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d lookups for two issuers asked three times each, want 2", n)
	}

	// Five minutes on, the answers are asked again; a store that is down
	// answers 503, and is asked again at the next token.
	now = now.Add(6 * time.Minute)
	storeDown.Store(true)
	for range 2 {
		if _, err := is.Verify(t.Context(), forged); !errors.Is(err, authz.ErrKeysUnavailable) {
			t.Errorf("lookup failed: %v, want ErrKeysUnavailable", err)
		}
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("%d lookups, want each failed one asked again (4)", n)
	}
	storeDown.Store(false)
	if _, err := is.Verify(t.Context(), pool.MustMint("globex", "basic")); err != nil {
		t.Errorf("after the store came back: %v", err)
	}
}

// TestIssuersBounded: past WithMaxIssuers, the least recently used issuer
// is dropped, its key refresh stopped (goleak checks), and built again
// when a token of it comes back.
func TestIssuersBounded(t *testing.T) {
	pools := []*authztest.Issuer{authztest.Start(t), authztest.Start(t), authztest.Start(t)}
	byURL := map[string]*authztest.Issuer{}
	for _, p := range pools {
		byURL[p.URL()] = p
	}
	is := newIssuers(t, authz.WithMaxIssuers(2), authz.WithIssuerLookup(func(_ context.Context, issuer string) (authz.IssuerConfig, error) {
		if p, ok := byURL[issuer]; ok {
			return authz.IssuerConfig{Options: issuerOptions(p)}, nil
		}
		return authz.IssuerConfig{}, authz.ErrIssuer
	}))
	for _, p := range []*authztest.Issuer{pools[0], pools[1], pools[2], pools[0]} {
		if _, err := is.Verify(t.Context(), p.MustMint("acme", "basic")); err != nil {
			t.Fatal(err)
		}
	}
	if got := []int{pools[0].JWKSFetches(), pools[1].JWKSFetches(), pools[2].JWKSFetches()}; got[0] != 2 || got[1] != 1 || got[2] != 1 {
		t.Errorf("JWK Set fetches %v, want [2 1 1]: the first pool dropped for the third and built again", got)
	}
}

// TestIssuersOneBuild: the first tokens of an issuer, all at once, wait
// for one build and one JWK Set fetch.
func TestIssuersOneBuild(t *testing.T) {
	pool := authztest.Start(t)
	is := newIssuers(t, authz.WithIssuer(pool.URL(), issuerOptions(pool)...))
	token := pool.MustMint("acme", "basic")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := is.Verify(context.Background(), token); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := pool.JWKSFetches(); n != 1 {
		t.Errorf("%d JWK Set fetches for 50 first tokens, want 1", n)
	}
}

// TestIssuersKeysUnavailable: an issuer whose keys cannot be fetched is
// answered 503 with Retry-After through the middleware, the client's
// token untouched, and tried again a few seconds later.
func TestIssuersKeysUnavailable(t *testing.T) {
	pool := authztest.Start(t)
	jwks, up, fetches := flakyJWKS(t, pool)
	is := newIssuers(t, authz.WithIssuer(pool.URL(), authz.WithAudience(pool.Audience()), authz.WithJWKSURL(jwks.URL)))
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	authz.SetIssuersClock(is, func() time.Time { return now })
	h := authz.Middleware(is)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn, _ := tenant.FromContext(r.Context())
		w.Write([]byte(tn.ID))
	}))
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+pool.MustMint("acme", "basic"))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for range 3 {
		w := do()
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "5" || w.Header().Get("WWW-Authenticate") != "" ||
			!strings.Contains(w.Body.String(), "authz-unavailable") {
			t.Fatalf("keys down: %d %v %s", w.Code, w.Header(), w.Body)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches of an unreachable JWK Set within the retry interval, want 1", n)
	}
	up.Store(true)
	now = now.Add(6 * time.Second)
	if w := do(); w.Code != http.StatusOK || w.Body.String() != "acme" {
		t.Errorf("keys back: %d %s", w.Code, w.Body)
	}
}

// TestCognitoPools: the issuer of a pool of the region, with a pool ID
// the tenant store knows, is verified with the pool's own JWK Set and
// binds its tokens to the pool's tenant; anything else is refused without
// asking the store or fetching anything.
func TestCognitoPools(t *testing.T) {
	idp := authztest.Start(t)
	// Requests for cognito-idp go to the test issuer.
	client := &http.Client{Transport: rewriteHost{to: strings.TrimPrefix(idp.URL(), "http://")}}
	var asked []string
	is := newIssuers(t, authz.CognitoPools("eu-west-1", func(_ context.Context, pool string) (string, error) {
		asked = append(asked, pool)
		if pool == "eu-west-1_AcmePool1" {
			return "acme", nil
		}
		return "", authz.ErrIssuer
	}, authz.WithAudience(idp.Audience()), authz.WithHTTPClient(client)))

	const acmePool = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AcmePool1"
	tok := func(iss, tenantID string) string {
		return idp.MustMint(tenantID, "premium", authztest.WithClaim("iss", iss))
	}
	if got, err := is.Verify(t.Context(), tok(acmePool, "acme")); err != nil || got.ID != "acme" {
		t.Errorf("acme's pool: %+v, %v", got, err)
	}
	if _, err := is.Verify(t.Context(), tok(acmePool, "globex")); !errors.Is(err, authz.ErrTenantClaim) {
		t.Errorf("globex from acme's pool: %v, want ErrTenantClaim", err)
	}
	for _, iss := range []string{
		"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Unknown",
		"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AcmePool1",
		"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Acme/../x",
		"https://cognito-idp.eu-west-1.amazonaws.com.evil.example/eu-west-1_AcmePool1",
		"https://evil.example/eu-west-1_AcmePool1",
	} {
		if _, err := is.Verify(t.Context(), tok(iss, "acme")); !errors.Is(err, authz.ErrIssuer) {
			t.Errorf("issuer %s: %v, want ErrIssuer", iss, err)
		}
	}
	if want := []string{"eu-west-1_AcmePool1", "eu-west-1_Unknown"}; fmt.Sprint(asked) != fmt.Sprint(want) {
		t.Errorf("the store was asked for %q, want %q", asked, want)
	}
	if _, err := authz.NewIssuers(authz.CognitoPools("europe", func(context.Context, string) (string, error) { return "", nil })); err == nil {
		t.Error("CognitoPools accepted a region that is none")
	}
}

// rewriteHost sends every request to the host to, over plain HTTP, the
// path cut to its /.well-known/ part: a pool's JWK Set is the issuer's.
type rewriteHost struct{ to string }

func (rw rewriteHost) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = "http", rw.to, rw.to
	if i := strings.Index(r.URL.Path, "/.well-known/"); i > 0 {
		r.URL.Path = r.URL.Path[i:]
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestNewIssuersRefusesMistakes: configuration mistakes are reported by
// NewIssuers, naming what to fix.
func TestNewIssuersRefusesMistakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []authz.IssuersOption
		want string
	}{
		{"none", nil, "at least one issuer"},
		{"not a URL", []authz.IssuersOption{authz.WithIssuer("pool-a", authz.WithAudience("api"))}, "not an absolute URL"},
		{"no audience", []authz.IssuersOption{authz.WithIssuer("https://a.example")}, "no audience"},
		{"twice", []authz.IssuersOption{authz.WithIssuer("https://a.example", authz.WithAudience("api")), authz.WithIssuer("https://a.example", authz.WithAudience("api"))}, "allowed twice"},
		{"bad tenant", []authz.IssuersOption{authz.WithTenantIssuer("https://a.example", " acme", authz.WithAudience("api"))}, "WithTenantIssuer"},
		{"nil lookup", []authz.IssuersOption{authz.WithIssuerLookup(nil)}, "WithIssuerLookup"},
		{"max", []authz.IssuersOption{authz.WithIssuer("https://a.example", authz.WithAudience("api")), authz.WithMaxIssuers(0)}, "WithMaxIssuers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := authz.NewIssuers(tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewIssuers = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
