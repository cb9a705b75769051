package authz_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
)

// signRaw signs payload, a JSON text written by hand, with HS256: the
// spelling of the claims is the test's, not encoding/json's.
func signRaw(t *testing.T, payload string) string {
	t.Helper()
	text := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(text, hmacSecret)
	if err != nil {
		t.Fatal(err)
	}
	return text + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// hmacVerifier verifies HS256 tokens of staticIssuer signed with
// hmacSecret, on clk; it is closed when t ends.
func hmacVerifier(t *testing.T, clk *clock) *authz.Verifier {
	t.Helper()
	v, err := authz.NewVerifier(t.Context(), staticIssuer, authz.WithAudience(staticAudience),
		authz.WithAlgorithms("HS256"), authz.WithHMACSecret(hmacSecret), authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// TestVerifyReadsClaimsAsWritten: the claims of a token are read as
// JSON says, whatever their spelling: escapes, Unicode, repeated claims,
// white space, numbers with exponents. A number out of range makes the
// token malformed.
func TestVerifyReadsClaimsAsWritten(t *testing.T) {
	clk := newClock()
	v := hmacVerifier(t, clk)
	now := clk.Now().Unix()
	base := fmt.Sprintf(`"iss":"https:\/\/issuer.invalid\/","aud":[%q],"iat":%d,"exp":%d,"custom:tenantTier":"basic"`, staticAudience, now, now+3600)
	for _, tc := range []struct {
		name, claims  string
		tenant, sub   string
		tier          string
		scopes, roles []string
	}{
		{"escaped tenant", `"custom:tenantId":"ac\u006de","sub":"al\"ice\\"`, "acme", `al"ice\`, "", nil, nil},
		{"Unicode", "\"custom:tenantId\":\"caf\u00e9-\U0001F600\",\"sub\":\"\\u00e9l\\u00e8ve\"", "café-😀", "élève", "", nil, nil},
		{"repeated claim, the last wins", `"custom:tenantId":"globex","custom:tenantId":"acme","sub":"u"`, "acme", "u", "", nil, nil},
		{"white space and escaped names", " \"custom:tenant\\u0049d\" :\t\"acme\" ,\n\"custom:tenantTier\" : \"premium\", \"sub\":\"u\",\"scope\":\"a b\",\"cognito:groups\":[ \"x\" , \"y\" ] ", "acme", "u", "premium", []string{"a", "b"}, []string{"x", "y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), signRaw(t, "{"+base+","+tc.claims+"}"))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.tenant || got.Subject != tc.sub {
				t.Errorf("tenant %q, subject %q; want %q, %q", got.ID, got.Subject, tc.tenant, tc.sub)
			}
			if tc.tier != "" && got.Tier.String() != tc.tier {
				t.Errorf("tier %q, want %q", got.Tier.String(), tc.tier)
			}
			if fmt.Sprint(got.Scopes) != fmt.Sprint(tc.scopes) || fmt.Sprint(got.Roles) != fmt.Sprint(tc.roles) {
				t.Errorf("scopes %q, roles %q; want %q, %q", got.Scopes, got.Roles, tc.scopes, tc.roles)
			}
		})
	}
	for _, tc := range []struct {
		name, payload string
		want          error
	}{
		{"exp out of range", fmt.Sprintf(`{"iss":%q,"aud":%q,"exp":1e400,"custom:tenantId":"acme"}`, staticIssuer, staticAudience), authz.ErrMalformedToken},
		{"a number out of range anywhere", "{" + base + `,"custom:tenantId":"acme","x":[-1e999]}`, authz.ErrMalformedToken},
		{"not an object", `["acme"]`, authz.ErrMalformedToken},
		// Not an object either (golang-jwt reads it as no claims, and
		// refuses the token for want of an exp).
		{"null", `null`, authz.ErrMalformedToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(t.Context(), signRaw(t, tc.payload)); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestTenantKeepsNoPayload: the claims' strings share the token's payload,
// but the tenant's ID and subject, which outlive the request as keys of
// long-lived tables, are copies of their own.
func TestTenantKeepsNoPayload(t *testing.T) {
	clk := newClock()
	v := hmacVerifier(t, clk)
	got, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, hmacSecret, "", claimsFor(clk.Now(), "acme", "basic")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ field, value, claim string }{
		{"ID", got.ID, "custom:tenantId"},
		{"Subject", got.Subject, "sub"},
	} {
		claim, ok := got.Claims().String(c.claim)
		if !ok || claim != c.value {
			t.Fatalf("claim %s = %q, %v; want %q", c.claim, claim, ok, c.value)
		}
		if unsafe.StringData(c.value) == unsafe.StringData(claim) {
			t.Errorf("the tenant's %s shares the memory of the token's payload", c.field)
		}
	}
}

// TestIssuersReadIssAsTheVerifierDoes: the issuer a token is sent to is
// its "iss" exactly, as the Verifier reads it; another claim spelled
// "ISS" after it does not send the token to another issuer.
func TestIssuersReadIssAsTheVerifierDoes(t *testing.T) {
	const other = "https://other.invalid/"
	clk := newClock()
	opts := []authz.Option{authz.WithAudience(staticAudience), authz.WithAlgorithms("HS256"),
		authz.WithHMACSecret(hmacSecret), authz.WithClock(clk.Now)}
	is, err := authz.NewIssuers(authz.WithIssuer(staticIssuer, opts...), authz.WithIssuer(other, opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { is.Close() })
	now := clk.Now().Unix()
	payload := fmt.Sprintf(`{"iss":%q,"ISS":%q,"aud":%q,"iat":%d,"exp":%d,"sub":"u","custom:tenantId":"acme","custom:tenantTier":"basic"}`,
		staticIssuer, other, staticAudience, now, now+3600)
	if got, err := is.Verify(t.Context(), signRaw(t, payload)); err != nil || got.ID != "acme" {
		t.Errorf("Verify = %+v, %v; want acme, verified by %s", got, err, staticIssuer)
	}
}
