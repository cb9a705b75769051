package authz_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/tenant"
)

func TestMiddlewareRefuses(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	shared := newHarness(t, v)

	mint := func(opts ...authztest.TokenOption) string { return iss.MustMint("acme", "premium", opts...) }
	valid := mint()
	hdr, payload, sig := segments(t, valid)
	_, otherPayload, otherSig := segments(t, iss.MustMint("globex", "platinum"))
	future := clk.Now().Add(time.Hour).Unix()

	// The classic key-confusion attack: an HS256 token whose HMAC secret is
	// the issuer's public key, which anyone can download.
	der, err := x509.MarshalPKIXPublicKey(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(valid, claims); err != nil {
		t.Fatal(err)
	}
	hsPEM := sign(t, jwt.SigningMethodHS256, pemKey, iss.KeyID(), claims)
	hsDER := sign(t, jwt.SigningMethodHS256, der, iss.KeyID(), claims)
	algNone := b64(map[string]any{"alg": "none", "typ": "JWT", "kid": iss.KeyID()}) + "." + payload + "."
	algUnknown := b64(map[string]any{"alg": "XS256", "typ": "JWT", "kid": iss.KeyID()}) + "." + payload + "." + sig
	kidNumber := b64(map[string]any{"alg": "RS256", "typ": "JWT", "kid": 7}) + "." + payload + "." + sig
	headerNotJSON := base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + payload + "." + sig
	huge := strings.Repeat("A", 16<<10)

	invalidToken := func(reason string) refusal { return refusal{http.StatusUnauthorized, reason, "invalid_token"} }
	malformedRequest := refusal{http.StatusUnauthorized, "malformed_request", "invalid_request"}

	tests := []struct {
		name          string
		token         string   // sent as "Bearer <token>"
		authorization []string // sent instead of token when set
		noHeader      bool     // send no Authorization header at all
		query         string   // raw query string
		vopts         []authz.Option
		mopts         []authz.MiddlewareOption
		want          refusal
	}{
		// Algorithms and signatures.
		{name: "alg none", token: algNone, want: invalidToken("algorithm")},
		{name: "alg unknown", token: algUnknown, want: invalidToken("algorithm")},
		{name: "HS256 keyed with the public key PEM", token: hsPEM, want: invalidToken("algorithm")},
		{name: "HS256 keyed with the public key DER", token: hsDER, want: invalidToken("algorithm")},
		{name: "HS256 keyed with the public key PEM, verifier with an HMAC secret", token: hsPEM,
			vopts: []authz.Option{authz.WithHMACSecret(hmacSecret)}, want: invalidToken("signature")},
		{name: "HS256 keyed with the public key DER, verifier with an HMAC secret", token: hsDER,
			vopts: []authz.Option{authz.WithHMACSecret(hmacSecret)}, want: invalidToken("signature")},
		{name: "payload of another token", token: hdr + "." + otherPayload + "." + sig, want: invalidToken("signature")},
		{name: "signature of another token", token: hdr + "." + payload + "." + otherSig, want: invalidToken("signature")},
		{name: "empty signature", token: hdr + "." + payload + ".", want: invalidToken("signature")},
		{name: "kid not a string", token: kidNumber, want: invalidToken("malformed_token")},

		// Time.
		{name: "expired", token: mint(authztest.WithExpiry(-time.Minute)), want: invalidToken("expired")},
		{name: "expires now", token: mint(authztest.WithExpiry(0)), want: invalidToken("expired")},
		{name: "nbf in the future", token: mint(authztest.WithClaim("nbf", future)), want: invalidToken("not_yet_valid")},
		{name: "iat in the future", token: mint(authztest.WithClaim("iat", future)), want: invalidToken("not_yet_valid")},
		{name: "exp missing", token: mint(authztest.WithClaim("exp", nil)), want: invalidToken("claims")},
		{name: "exp not a number", token: mint(authztest.WithClaim("exp", "tomorrow")), want: invalidToken("claims")},

		// Issuer and audience.
		{name: "wrong iss", token: mint(authztest.WithClaim("iss", "https://evil.example.com")), want: invalidToken("issuer")},
		{name: "iss with a trailing slash", token: mint(authztest.WithClaim("iss", iss.URL()+"/")), want: invalidToken("issuer")},
		{name: "iss missing", token: mint(authztest.WithClaim("iss", nil)), want: invalidToken("claims")},
		{name: "wrong aud", token: mint(authztest.WithClaim("aud", "another-api")), want: invalidToken("audience")},
		{name: "aud list without ours", token: mint(authztest.WithClaim("aud", []string{"a", "b"})), want: invalidToken("audience")},
		{name: "aud missing", token: mint(authztest.WithClaim("aud", nil)), want: invalidToken("audience")},
		{name: "aud missing, client_id ours but no token_use", token: mint(authztest.WithClaim("aud", nil), authztest.WithClaim("client_id", iss.Audience())), want: invalidToken("audience")},
		{name: "Cognito ID token", token: mint(authztest.WithClaim("token_use", "id")), want: invalidToken("token_type")},
		{name: "Keycloak ID token", token: mint(authztest.WithClaim("typ", "ID")), want: invalidToken("token_type")},
		{name: "typ header of a logout token", token: mint(authztest.WithHeader("typ", "logout+jwt")), want: invalidToken("token_type")},
		{name: "typ header not a string", token: mint(authztest.WithHeader("typ", 1)), want: invalidToken("token_type")},
		{name: "typ JWT where at+jwt is required", token: valid, vopts: []authz.Option{authz.WithAccessTokenType()}, want: invalidToken("token_type")},
		{name: "claim check refuses", token: valid, vopts: []authz.Option{authz.WithClaimCheck(func(c tenant.Claims) error {
			if _, ok := c.Get("scp"); !ok {
				return errors.New("no scp claim")
			}
			return nil
		})}, want: invalidToken("token_type")},

		// The tenant claim.
		{name: "tenant missing", token: mint(authztest.WithClaim("custom:tenantId", nil)), want: invalidToken("tenant_claim")},
		{name: "tenant blank", token: iss.MustMint("", "premium"), want: invalidToken("tenant_claim")},
		{name: "tenant 129 bytes", token: iss.MustMint(strings.Repeat("a", tenant.MaxIDLength+1), "premium"), want: invalidToken("tenant_claim")},
		{name: "tenant fraction", token: mint(authztest.WithClaim("custom:tenantId", 4.2)), want: invalidToken("tenant_claim")},
		{name: "tenant array", token: mint(authztest.WithClaim("custom:tenantId", []string{"acme"})), want: invalidToken("tenant_claim")},
		{name: "tenant object", token: mint(authztest.WithClaim("custom:tenantId", map[string]any{"id": "acme"})), want: invalidToken("tenant_claim")},
		{name: "tenant null", token: mint(authztest.WithClaim("custom:tenantId", json.RawMessage("null"))), want: invalidToken("tenant_claim")},
		{name: "tenant with newline", token: iss.MustMint("ac\nme", "premium"), want: invalidToken("tenant_claim")},
		{name: "tenant with NUL", token: iss.MustMint("ac\x00me", "premium"), want: invalidToken("tenant_claim")},
		{name: "tenant with right-to-left override", token: iss.MustMint("acme\u202e", "premium"), want: invalidToken("tenant_claim")},
		{name: "tenant with leading space", token: iss.MustMint(" acme", "premium"), want: invalidToken("tenant_claim")},

		// The tier claim.
		{name: "tier unknown", token: iss.MustMint("acme", "gold"), want: invalidToken("tier_claim")},
		{name: "tier number", token: mint(authztest.WithClaim("custom:tenantTier", 3)), want: invalidToken("tier_claim")},
		{name: "tier missing", token: iss.MustMint("acme", ""), want: invalidToken("tier_claim")},
		{name: "tier unknown, with a default tier", token: iss.MustMint("acme", "gold"),
			vopts: []authz.Option{authz.WithDefaultTier("basic")}, want: invalidToken("tier_claim")},

		// Other claims.
		{name: "roles not strings", token: mint(authztest.WithClaim("cognito:groups", []int{1, 2})), want: invalidToken("claims")},
		{name: "too many roles", token: mint(authztest.WithRoles(manyRoles(257)...)), want: invalidToken("claims")},
		{name: "role with control character", token: mint(authztest.WithRoles("admin\r\nX-Admin: 1")), want: invalidToken("claims")},
		{name: "sub not a string", token: mint(authztest.WithClaim("sub", 1)), want: invalidToken("claims")},
		{name: "sub with newline", token: mint(authztest.WithSubject("user\n1")), want: invalidToken("claims")},
		{name: "sub with right-to-left override", token: mint(authztest.WithSubject("user\u202e1")), want: invalidToken("claims")},
		{name: "sub with zero width space", token: mint(authztest.WithSubject("ad\u200bmin")), want: invalidToken("claims")},
		{name: "sub with line separator", token: mint(authztest.WithSubject("user\u20281")), want: invalidToken("claims")},
		{name: "role with zero width space", token: mint(authztest.WithRoles("ad\u200bmin")), want: invalidToken("claims")},

		// Token syntax.
		{name: "malformed base64", token: hdr + ".@@@@." + sig, want: invalidToken("malformed_token")},
		{name: "header not JSON", token: headerNotJSON, want: invalidToken("malformed_token")},
		{name: "two segments", token: hdr + "." + payload, want: invalidToken("malformed_token")},
		{name: "four segments", token: valid + ".x", want: invalidToken("malformed_token")},
		{name: "five segments", token: valid + ".x.y", want: invalidToken("malformed_token")},
		{name: "a.b.c", token: "a.b.c", want: invalidToken("malformed_token")},
		{name: "not a JWT", token: "opaque-access-token-0123456789", want: invalidToken("malformed_token")},
		{name: "16 KB token", token: huge, want: invalidToken("token_too_large")},

		// The Authorization header.
		{name: "Bearer and nothing else", authorization: []string{"Bearer"}, want: malformedRequest},
		{name: "Bearer and spaces", authorization: []string{"Bearer     "}, want: malformedRequest},
		{name: "Bearer and two words", authorization: []string{"Bearer " + valid + " " + valid}, want: malformedRequest},
		{name: "Basic scheme", authorization: []string{"Basic dXNlcjpwYXNzd29yZA=="}, want: malformedRequest},
		{name: "no scheme", authorization: []string{valid}, want: malformedRequest},
		{name: "two Authorization headers", authorization: []string{"Bearer " + valid, "Bearer " + valid}, want: malformedRequest},
		{name: "no Authorization header", noHeader: true, want: refusal{http.StatusUnauthorized, "no_token", ""}},

		// The query string.
		{name: "access_token in the query", noHeader: true, query: "access_token=" + valid,
			want: refusal{http.StatusUnauthorized, "query_token", "invalid_request"}},
		{name: "access_token escaped underscore", noHeader: true, query: "access%5Ftoken=" + valid,
			want: refusal{http.StatusUnauthorized, "query_token", "invalid_request"}},
		{name: "access_token escaped lower-case underscore", noHeader: true, query: "a=1&access%5ftoken=" + valid,
			want: refusal{http.StatusUnauthorized, "query_token", "invalid_request"}},
		{name: "access_token escaped first letter", noHeader: true, query: "%61ccess_token=" + valid,
			want: refusal{http.StatusUnauthorized, "query_token", "invalid_request"}},
		{name: "access_token fully escaped", noHeader: true, query: "%61%63%63%65%73%73%5F%74%6F%6B%65%6E=" + valid,
			want: refusal{http.StatusUnauthorized, "query_token", "invalid_request"}},
		{name: "access_token in the query and a header", token: valid, query: "access_token=" + valid,
			want: refusal{http.StatusUnauthorized, "query_token", "invalid_request"}},
		{name: "query token allowed, also a header", token: valid, query: "access_token=" + valid,
			mopts: []authz.MiddlewareOption{authz.WithQueryToken("access_token")}, want: malformedRequest},
		{name: "query token allowed, bad token", noHeader: true, query: "access_token=a.b.c",
			mopts: []authz.MiddlewareOption{authz.WithQueryToken("access_token")}, want: invalidToken("malformed_token")},

		// Optional credentials still refuse bad ones.
		{name: "credentials optional, bad token", token: hdr + "." + otherPayload + "." + sig,
			mopts: []authz.MiddlewareOption{authz.WithCredentialsOptional()}, want: invalidToken("signature")},
		{name: "credentials optional, malformed header", authorization: []string{"Bearer"},
			mopts: []authz.MiddlewareOption{authz.WithCredentialsOptional()}, want: malformedRequest},
		{name: "credentials optional, token in the query", noHeader: true, query: "access_token=" + valid,
			mopts: []authz.MiddlewareOption{authz.WithCredentialsOptional()},
			want:  refusal{http.StatusUnauthorized, "query_token", "invalid_request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := shared
			if tt.vopts != nil || tt.mopts != nil {
				v := v
				if tt.vopts != nil {
					v = iss.Verifier(t, append([]authz.Option{authz.WithClock(clk.Now)}, tt.vopts...)...)
				}
				h = newHarness(t, v, tt.mopts...)
			}
			auth, secret := tt.authorization, tt.token
			switch {
			case tt.noHeader:
				auth = nil
			case auth == nil:
				auth = []string{"Bearer " + tt.token}
			default:
				secret = strings.Join(auth, "\n")
			}
			if tt.query != "" {
				secret += "\n" + tt.query
			}
			res := h.do(t, h.request(t, tt.query, auth...))
			checkRefused(t, res, tt.want, secret)
		})
	}
}

func manyRoles(n int) []string {
	roles := make([]string, n)
	for i := range roles {
		roles[i] = fmt.Sprintf("role-%d", i)
	}
	return roles
}

func TestMiddlewareAccepts(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	shared := newHarness(t, v)
	valid := iss.MustMint("acme", "premium")
	long := strings.Repeat("t", tenant.MaxIDLength)

	tests := []struct {
		name          string
		authorization []string
		query         string
		vopts         []authz.Option
		mopts         []authz.MiddlewareOption
		want          string // body: "<tenant> <tier>"
		wantTenant    bool   // the record names the tenant
	}{
		{name: "Bearer", authorization: []string{"Bearer " + valid}, want: "acme premium", wantTenant: true},
		{name: "lower-case bearer", authorization: []string{"bearer " + valid}, want: "acme premium", wantTenant: true},
		{name: "upper-case BEARER", authorization: []string{"BEARER " + valid}, want: "acme premium", wantTenant: true},
		{name: "spaces before the token", authorization: []string{"Bearer    " + valid}, want: "acme premium", wantTenant: true},
		{name: "tenant ID of 128 bytes", authorization: []string{"Bearer " + iss.MustMint(long, "basic")}, want: long + " basic", wantTenant: true},
		{name: "tenant ID not ASCII", authorization: []string{"Bearer " + iss.MustMint("café-ünïcode", "basic")}, want: "café-ünïcode basic", wantTenant: true},
		{name: "tier named in another case", authorization: []string{"Bearer " + iss.MustMint("acme", "PLATINUM")}, want: "acme platinum", wantTenant: true},
		{name: "tier missing, default tier", authorization: []string{"Bearer " + iss.MustMint("acme", "")},
			vopts: []authz.Option{authz.WithDefaultTier("standard")}, want: "acme standard", wantTenant: true},
		{name: "token in the query, allowed", query: "access_token=" + valid,
			mopts: []authz.MiddlewareOption{authz.WithQueryToken("access_token")}, want: "acme premium", wantTenant: true},
		{name: "token in another query parameter", query: "token=" + valid,
			mopts: []authz.MiddlewareOption{authz.WithQueryToken("token")}, want: "acme premium", wantTenant: true},
		{name: "another parameter named like the token", authorization: []string{"Bearer " + valid}, query: "access_tokens=1&x_access_token=2&q=%41",
			want: "acme premium", wantTenant: true},
		{name: "credentials optional, no header",
			mopts: []authz.MiddlewareOption{authz.WithCredentialsOptional()}, want: " "},
		{name: "credentials optional, good token", authorization: []string{"Bearer " + valid},
			mopts: []authz.MiddlewareOption{authz.WithCredentialsOptional()}, want: "acme premium", wantTenant: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := shared
			if tt.vopts != nil || tt.mopts != nil {
				v := v
				if tt.vopts != nil {
					v = iss.Verifier(t, append([]authz.Option{authz.WithClock(clk.Now)}, tt.vopts...)...)
				}
				h = newHarness(t, v, tt.mopts...)
			}
			res := h.do(t, h.request(t, tt.query, tt.authorization...))
			if res.status != http.StatusOK || string(res.body) != tt.want {
				t.Fatalf("got %d %q, want 200 %q", res.status, res.body, tt.want)
			}
			if !res.handlerRan() {
				t.Error("the handler did not run")
			}
			if rej := res.rec.Rejection(); !rej.IsZero() {
				t.Errorf("record holds rejection %+v", rej)
			}
			tn, ok := res.rec.Tenant()
			if ok != tt.wantTenant || (ok && tn.ID+" "+tn.Tier.String() != tt.want) {
				t.Errorf("record tenant = %q %q (%v), want %q (%v)", tn.ID, tn.Tier, ok, tt.want, tt.wantTenant)
			}
		})
	}
}

// TestMiddlewareRequestUnchanged checks that the middleware hands the
// handler a copy of the request and leaves the caller's alone.
func TestMiddlewareRequestUnchanged(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	var got *http.Request
	h := authz.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+iss.MustMint("acme", "basic"))
	before := req.Context()
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got == nil || got == req {
		t.Fatalf("handler got %p, the caller's request is %p: want a copy", got, req)
	}
	if req.Context() != before {
		t.Error("the caller's request context changed")
	}
	if _, ok := tenant.FromContext(got.Context()); !ok {
		t.Error("no tenant in the handler's context")
	}
}

func TestMiddlewareRealm(t *testing.T) {
	clk := newClock()
	_, v := startIssuer(t, clk)
	h := authz.Middleware(v, authz.WithRealm(`orders "api"`))(http.NotFoundHandler())
	for _, tt := range []struct {
		name, authorization, want string
	}{
		{"no token", "", `Bearer realm="orders api"`},
		{"bad token", "Bearer a.b.c", `Bearer realm="orders api", error="invalid_token", error_description="The token is malformed."`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if diff := cmp.Diff(tt.want, rec.Header().Get("WWW-Authenticate")); diff != "" {
				t.Errorf("WWW-Authenticate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMiddlewareErrorHandler(t *testing.T) {
	clk := newClock()
	_, v := startIssuer(t, clk)
	var gotErr error
	h := authz.Middleware(v, authz.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		w.WriteHeader(http.StatusTeapot)
	}))(http.NotFoundHandler())
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer a.b.c")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTeapot || !errors.Is(gotErr, authz.ErrMalformedToken) {
		t.Errorf("got %d and %v, want 418 and an error wrapping ErrMalformedToken", rec.Code, gotErr)
	}
}

// TestMiddlewareZeroOptionsMeanDefault: nil options, WithErrorHandler(nil),
// WithRealm("") and WithQueryToken("") leave the middleware as it is
// without them: a token in the query string is refused, and a refusal
// is written by WriteError, without a realm.
func TestMiddlewareZeroOptionsMeanDefault(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	h := newHarness(t, v, nil, authz.WithErrorHandler(nil), authz.WithRealm(""), authz.WithQueryToken(""))
	checkRefused(t, h.do(t, h.request(t, "")), refusal{http.StatusUnauthorized, "no_token", ""}, "")
	tok := iss.MustMint("acme", "basic")
	checkRefused(t, h.do(t, h.request(t, "access_token="+tok)), refusal{http.StatusUnauthorized, "query_token", "invalid_request"}, tok)
	if res := h.bearer(t, tok); res.status != http.StatusOK || string(res.body) != "acme basic" {
		t.Errorf("valid token: %d %s", res.status, res.body)
	}
}

func TestMiddlewareNilVerifierPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "authz: ") {
			t.Errorf("recover() = %v, want a panic with the authz: prefix", r)
		}
	}()
	authz.Middleware(nil)
}

// TestUnknownKeyRefreshesOnce checks that a token naming an unknown key
// makes the verifier fetch the JWK Set once, in case the issuer rotated,
// and is then refused; another such token within the cooldown fetches
// nothing.
func TestUnknownKeyRefreshesOnce(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	h := newHarness(t, v)
	want := refusal{http.StatusUnauthorized, "unknown_key", "invalid_token"}

	before := iss.JWKSFetches()
	tok := iss.MustMint("acme", "premium", authztest.WithKeyID("no-such-key"))
	checkRefused(t, h.bearer(t, tok), want, tok)
	if got := iss.JWKSFetches() - before; got != 1 {
		t.Errorf("JWK Set fetches for the first unknown kid = %d, want 1", got)
	}

	tok = iss.MustMint("acme", "premium", authztest.WithKeyID("no-such-key-either"))
	checkRefused(t, h.bearer(t, tok), want, tok)
	if got := iss.JWKSFetches() - before; got != 1 {
		t.Errorf("JWK Set fetches after a second unknown kid = %d, want still 1", got)
	}

	// A kid-less token is not tried against every key of the set.
	kidless := b64(map[string]any{"alg": "RS256", "typ": "JWT"}) + "." + strings.SplitN(tok, ".", 2)[1]
	checkRefused(t, h.bearer(t, kidless), want, kidless)
}

// TestUnknownKeyFlood sends 1,000 concurrent tokens with distinct unknown
// key IDs: together they may cause one JWK Set fetch per cooldown, and no
// request waits for another's fetch.
func TestUnknownKeyFlood(t *testing.T) {
	const n = 1000
	clk := newClock()
	iss, v := startIssuer(t, clk, authz.WithRefreshCooldown(time.Hour))
	mw := authz.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler ran")
	}))
	valid := iss.MustMint("acme", "premium")
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = withKID(t, valid, fmt.Sprintf("unknown-%d", i))
	}

	before := iss.JWKSFetches()
	start := time.Now()
	statuses := make([]int, n)
	reasons := make([]string, n)
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			ww, req, rec := requesttest.Start(w, req)
			mw.ServeHTTP(ww, req)
			statuses[i], reasons[i] = w.Code, rec.Rejection().Reason
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	if got := iss.JWKSFetches() - before; got > 1 {
		t.Errorf("%d concurrent unknown kids caused %d JWK Set fetches, want at most 1", n, got)
	}
	for i := range n {
		if statuses[i] != http.StatusUnauthorized || reasons[i] != "unknown_key" {
			t.Fatalf("request %d: %d %q, want 401 unknown_key", i, statuses[i], reasons[i])
		}
	}
	// A request that waited for the refresh limiter would wait up to
	// DefaultHTTPTimeout; all of them together must take less than that.
	if elapsed >= authz.DefaultHTTPTimeout {
		t.Errorf("%d requests took %v: some waited for the refresh limiter", n, elapsed)
	}
}

// TestQueryTokenReadAsURLValues: the refusal of a token in the query string
// sees the parameters url.Values sees, however they are escaped.
func TestQueryTokenReadAsURLValues(t *testing.T) {
	for _, raw := range []string{
		"", "a=1", "access_token", "access_token=", "access_token=x", "x=1&access_token=y",
		"access%5Ftoken=x", "access%5ftoken=x", "%61ccess_token=x", "acc%65ss_token", "access_token%3D=x",
		"access_tokens=x", "xaccess_token=x", "access_token;=x", "a;access_token=x", "access_token%zz=x",
		"%zz&access_token=x", "q=access_token", "q=%61ccess_token", "access+token=x", "access%20token=x",
		"&&access_token&&", "access_token=%zz",
	} {
		want := false
		if v, _ := url.ParseQuery(raw); v.Has("access_token") {
			want = true
		}
		if got := authz.QueryHasToken(raw); got != want {
			t.Errorf("QueryHasToken(%q) = %v, url.Values says %v", raw, got, want)
		}
	}
}
