package authz_test

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
)

// fuzzNow is the fixed time of FuzzMiddleware: tokens in its seed corpus,
// signed with edKey at epoch, stay valid whenever the fuzzer runs.
var fuzzNow = epoch.Add(time.Minute)

// fuzzSeeds returns a valid token and one for each kind of bad input.
func fuzzSeeds(t testing.TB) []string {
	c := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		claims := claimsFor(epoch, "acme", "premium")
		if edit != nil {
			edit(claims)
		}
		return claims
	}
	ed := func(kid string, claims jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodEdDSA, edKey, kid, claims)
	}
	valid := ed("fuzz", c(nil))
	hdr, payload, sig := segments(t, valid)
	return []string{
		valid,
		ed("", c(nil)),
		ed("fuzz", c(func(m jwt.MapClaims) { m["cognito:groups"] = []string{"admin"}; m["scope"] = "a b" })),
		// Algorithms and keys.
		b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + payload + ".",
		sign(t, jwt.SigningMethodHS256, []byte(edKey.Public().(ed25519.PublicKey)), "fuzz", c(nil)),
		ed("unknown", c(nil)),
		b64(map[string]any{"alg": "EdDSA", "kid": 7}) + "." + payload + "." + sig,
		// Claims.
		ed("fuzz", c(func(m jwt.MapClaims) { m["exp"] = epoch.Add(-time.Hour).Unix() })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["nbf"] = epoch.Add(time.Hour).Unix() })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["iat"] = epoch.Add(time.Hour).Unix() })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["iss"] = "https://evil.example.com/" })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["aud"] = "another-api" })),
		ed("fuzz", c(func(m jwt.MapClaims) { delete(m, "exp") })),
		ed("fuzz", c(func(m jwt.MapClaims) { delete(m, "custom:tenantId") })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = "" })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = strings.Repeat("a", 129) })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = 4.2 })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = []string{"acme"} })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = map[string]any{"id": "acme"} })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = nil })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = "ac\nme" })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = "ac\x00me" })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantId"] = "acme\u202e" })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantTier"] = "gold" })),
		ed("fuzz", c(func(m jwt.MapClaims) { m["custom:tenantTier"] = 3 })),
		ed("fuzz", c(func(m jwt.MapClaims) { delete(m, "custom:tenantTier") })),
		// Syntax.
		hdr + ".@@@@." + sig,
		hdr + "." + payload,
		valid + ".x",
		valid + ".x.y",
		hdr + "." + payload + "." + flip(sig, 10),
		"",
		" ",
		"a.b.c",
		"..",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA"}`)) + ".e30.",
		strings.Repeat("A", authz.DefaultMaxTokenBytes+1),
	}
}

// flip changes the character at i of a base64url string to another.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// fuzzOracle verifies token independently of authz, with golang-jwt alone,
// and returns the tenant it names when a verifier configured like
// FuzzMiddleware's must accept it.
func fuzzOracle(token string) (string, bool) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithIssuer(staticIssuer),
		jwt.WithAudience(staticAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return fuzzNow }),
	)
	claims := jwt.MapClaims{}
	if _, err := p.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return edKey.Public(), nil }); err != nil {
		return "", false
	}
	id, _ := claims["custom:tenantId"].(string)
	if n, ok := claims["custom:tenantId"].(float64); ok && n == math.Trunc(n) && math.Abs(n) <= 1<<53 {
		id = strconv.FormatInt(int64(n), 10) // an integer tenant ID
	}
	if tenant.ValidateID(id) != nil {
		return "", false
	}
	return id, true
}

// newFuzzVerifier returns the verifier FuzzMiddleware checks: edKey under
// the kid "fuzz" and for kid-less tokens, on the fixed time fuzzNow.
func newFuzzVerifier(tb testing.TB) *authz.Verifier {
	v, err := authz.NewVerifier(tb.Context(), staticIssuer,
		authz.WithAudience(staticAudience),
		authz.WithStaticKeys(map[string]crypto.PublicKey{"fuzz": edKey.Public(), "": edKey.Public()}),
		authz.WithClock(func() time.Time { return fuzzNow }))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// FuzzMiddleware sends arbitrary tokens through authz.Middleware and
// Verify: nothing panics, the answer is 200 or 401, and a 200 only comes
// for a token that golang-jwt on its own verifies, for the tenant it names.
func FuzzMiddleware(f *testing.F) {
	v := newFuzzVerifier(f)
	h := authz.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn, ok := tenant.FromContext(r.Context())
		if !ok {
			w.WriteHeader(http.StatusTeapot) // the handler ran without a tenant
			return
		}
		io.WriteString(w, tn.ID)
	}))
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		wantTenant, valid := fuzzOracle(token)

		got, err := v.Verify(t.Context(), token)
		if err == nil && (!valid || got.ID != wantTenant) {
			t.Fatalf("Verify accepted a token for %q; on its own golang-jwt says valid=%v for %q", got.ID, valid, wantTenant)
		}

		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Authorization"] = []string{"Bearer " + token}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
			if !valid || w.Body.String() != wantTenant {
				t.Fatalf("200 for tenant %q; on its own golang-jwt says valid=%v for %q", w.Body, valid, wantTenant)
			}
		case http.StatusUnauthorized:
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("401 with Content-Type %q", ct)
			}
			if frag, ok := sharedFragment(token, w.Body.String()+w.Header().Get("WWW-Authenticate"), leakWindow+1); ok {
				t.Fatalf("401 response contains %q from the token", frag)
			}
		default:
			t.Fatalf("status %d, want 200 or 401; body %s", w.Code, w.Body)
		}
	})
}

// TestFuzzSeeds checks the seed corpus does what FuzzMiddleware assumes:
// the first three tokens verify, the others are refused.
func TestFuzzSeeds(t *testing.T) {
	v := newFuzzVerifier(t)
	for i, s := range fuzzSeeds(t) {
		want := i < 3
		if _, valid := fuzzOracle(s); want && !valid {
			t.Errorf("seed %d: golang-jwt refuses it", i)
		}
		if _, err := v.Verify(t.Context(), s); (err == nil) != want {
			t.Errorf("seed %d: Verify error = %v, want accepted = %v", i, err, want)
		}
	}

	// The committed corpus: files named valid... hold tokens that verify.
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzMiddleware", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no committed seed corpus: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "go test fuzz v1\nstring(")
		token, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
		if !ok || err != nil {
			t.Fatalf("%s is not a one-string corpus file", file)
		}
		want := strings.HasPrefix(filepath.Base(file), "valid")
		if _, err := v.Verify(t.Context(), token); (err == nil) != want {
			t.Errorf("%s: Verify error = %v, want accepted = %v", file, err, want)
		}
	}
}
