package authz_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/tenant"
)

// epoch is the start of every injected clock: whole seconds, as in "iat"
// and "exp", so that comparisons at a token's expiry are exact.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable time source for authz.WithClock and
// authztest.WithClock. Tests move it instead of sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: epoch} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Keys are generated once per test binary: RSA generation is slow under -race.
var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
	// edKey is derived from a fixed seed, so that tokens it signs (such as
	// the fuzz seed corpus) stay valid across runs.
	edKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
)

// hmacSecret is a 32-byte secret for HS256 verifiers.
var hmacSecret = []byte("0123456789abcdef0123456789abcdef")

// staticIssuer is the "iss" of tokens verified with static keys or a secret:
// no server answers there, which proves nothing is fetched.
const (
	staticIssuer   = "https://issuer.invalid/"
	staticAudience = "https://api.example.com"
)

// claimsFor returns valid Cognito-style claims for a static-key verifier
// at the time now.
func claimsFor(now time.Time, tenantID, tier string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":               staticIssuer,
		"aud":               staticAudience,
		"sub":               "user-1",
		"iat":               now.Unix(),
		"exp":               now.Add(time.Hour).Unix(),
		"custom:tenantId":   tenantID,
		"custom:tenantTier": tier,
	}
}

// sign signs claims with method and key; kid "" leaves the "kid" header out.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// segments splits a compact JWS into header, payload and signature.
func segments(t testing.TB, token string) (header, payload, sig string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// withKID returns token with its header replaced by one naming kid. The
// signature no longer matches, which does not matter for a key that is
// looked up before the signature is checked.
func withKID(t testing.TB, token, kid string) string {
	t.Helper()
	_, payload, sig := segments(t, token)
	return b64(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}) + "." + payload + "." + sig
}

// harness serves a handler wrapped in authz.Middleware over httptest, with
// an outer wrapper that gives each request its state, as the stack
// does, and hands its record to the test once the chain has returned.
type harness struct {
	srv     *httptest.Server
	records chan *requesttest.Record
}

func newHarness(t testing.TB, v *authz.Verifier, opts ...authz.MiddlewareOption) *harness {
	t.Helper()
	return newHarnessFor(t, authz.Middleware(v, opts...))
}

// newHarnessFor serves mw (any authz middleware, or a chain of them) in
// front of a handler that writes "<tenant> <tier>" and 200.
func newHarnessFor(t testing.TB, mw func(http.Handler) http.Handler) *harness {
	t.Helper()
	h := &harness{records: make(chan *requesttest.Record, 1)}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requesttest.MarkRan(r.Context())
		tn, _ := tenant.FromContext(r.Context())
		io.WriteString(w, tn.ID+" "+tn.Tier.String())
	})
	chain := mw(inner)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w, r, rec := requesttest.Start(w, r)
		chain.ServeHTTP(w, r)
		h.records <- rec
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// result is what a request through the harness produced.
type result struct {
	status int
	header http.Header
	body   []byte
	rec    *requesttest.Record
}

func (r result) handlerRan() bool { return r.rec.HandlerRan() }

// request builds a GET to the harness with the given raw query and
// Authorization header values.
func (h *harness) request(t testing.TB, query string, authorization ...string) *http.Request {
	t.Helper()
	u := h.srv.URL + "/orders"
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	return req
}

func (h *harness) do(t testing.TB, req *http.Request) result {
	t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: body, rec: <-h.records}
}

// bearer sends token in an Authorization header.
func (h *harness) bearer(t testing.TB, token string) result {
	t.Helper()
	return h.do(t, h.request(t, "", "Bearer "+token))
}

// refusal is what a refused request must look like.
type refusal struct {
	status int
	reason string // tenant.Rejection.Reason
	code   string // RFC 6750 error code in WWW-Authenticate; "" for none
}

// problem is the RFC 9457 document the middleware writes.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// internals are fragments of Go error text that must never reach a client.
var internals = []string{
	"crypto/", "illegal base64", "json:", "authz:", "tenant:", "jwkset",
	"keyfunc", "token is malformed:", "token is unverifiable:", "token has invalid", "%!", "rsa:",
	"ecdsa", "failed to", "invalid character",
}

// checkRefused asserts everything a refused request must satisfy. secret is
// the credential the client sent (a token, or a header value), none of which
// may come back.
func checkRefused(t testing.TB, res result, want refusal, secret string) {
	t.Helper()
	if res.status != want.status {
		t.Errorf("status = %d, want %d; body %s", res.status, want.status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem
	dec := json.NewDecoder(bytes.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Errorf("body %q is not a problem document: %v", res.body, err)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" || p.Status != want.status {
		t.Errorf("problem = %+v, want type, title, detail and status %d", p, want.status)
	}
	checkChallenge(t, res.header, want)
	if res.handlerRan() {
		t.Error("the handler ran for a refused request")
	}
	wantRej := tenant.Rejection{By: "authz", Reason: want.reason, Status: want.status}
	gotRej := res.rec.Rejection()
	if diff := cmp.Diff(wantRej, gotRej, cmpopts.IgnoreFields(tenant.Rejection{}, "Detail")); diff != "" {
		t.Errorf("record rejection (-want +got):\n%s", diff)
	}
	// The detail is for the logs: bounded, one line, and no credential.
	if d := gotRej.Detail; len(d) > 203 || strings.ContainsAny(d, "\n\r\x00") {
		t.Errorf("rejection detail %q: longer than 203 bytes or not one line", d)
	}
	for part := range strings.SplitSeq(secret, ".") {
		if len(part) >= 16 && strings.Contains(gotRej.Detail, part) {
			t.Errorf("rejection detail %q holds part of the credential", gotRej.Detail)
		}
	}
	if tn, ok := res.rec.Tenant(); ok && tn.Source.Verified() && want.status == http.StatusUnauthorized {
		t.Errorf("record holds verified tenant %q for an unauthenticated request", tn.ID)
	}
	checkNoLeak(t, res, secret)
}

func checkChallenge(t testing.TB, h http.Header, want refusal) {
	t.Helper()
	got := h.Values("WWW-Authenticate")
	switch {
	case want.status == http.StatusUnauthorized && want.code == "":
		// RFC 6750 §3.1: no error code when the request had no credentials.
		if diff := cmp.Diff([]string{"Bearer"}, got); diff != "" {
			t.Errorf("WWW-Authenticate (-want +got):\n%s", diff)
		}
	case want.code != "":
		if len(got) != 1 || !strings.HasPrefix(got[0], "Bearer ") || !strings.Contains(got[0], `error="`+want.code+`"`) {
			t.Errorf("WWW-Authenticate = %q, want a Bearer challenge with error=%q", got, want.code)
		}
	default:
		if len(got) != 0 {
			t.Errorf("WWW-Authenticate = %q, want none", got)
		}
	}
}

// leakWindow is the longest part of a credential that may show up in a
// response by coincidence.
const leakWindow = 10

// checkNoLeak asserts that no part of secret longer than leakWindow bytes,
// and no Go error text, is in the response headers or body.
func checkNoLeak(t testing.TB, res result, secret string) {
	t.Helper()
	var out strings.Builder
	out.Write(res.body)
	for name, vs := range res.header {
		out.WriteString("\n" + name + ": " + strings.Join(vs, ", "))
	}
	text := out.String()
	if frag, ok := sharedFragment(secret, text, leakWindow+1); ok {
		t.Errorf("response contains %q, part of the credential:\n%s", frag, text)
	}
	for _, s := range internals {
		if strings.Contains(text, s) {
			t.Errorf("response contains Go error text %q:\n%s", s, text)
		}
	}
}

// sharedFragment returns a substring of length n found in both a and b.
func sharedFragment(a, b string, n int) (string, bool) {
	if len(a) < n || len(b) < n {
		return "", false
	}
	if len(a) > len(b) {
		a, b = b, a // index the shorter: looking up the longer allocates nothing
	}
	seen := make(map[string]struct{}, len(a))
	for i := 0; i+n <= len(a); i++ {
		seen[a[i:i+n]] = struct{}{}
	}
	for i := 0; i+n <= len(b); i++ {
		if _, ok := seen[b[i:i+n]]; ok {
			return b[i : i+n], true
		}
	}
	return "", false
}

// startIssuer starts an authztest issuer and a verifier for it, both on
// clk, with the verifier's extra options.
func startIssuer(t testing.TB, clk *clock, opts ...authz.Option) (*authztest.Issuer, *authz.Verifier) {
	t.Helper()
	iss := authztest.Start(t, authztest.WithClock(clk.Now))
	v := iss.Verifier(t, append([]authz.Option{authz.WithClock(clk.Now)}, opts...)...)
	return iss, v
}
