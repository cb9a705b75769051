package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
)

func TestConfigDefaults(t *testing.T) {
	env := map[string]string{"AUTH_ISSUER": "https://issuer.example", "AUTH_AUDIENCE": "orders-dev"}
	c, err := loadConfig(func(name string) string { return env[name] })
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		addr:     "127.0.0.1:8081",
		issuer:   "https://issuer.example",
		audience: "orders-dev",
		mapping:  authz.Cognito(),
		logLevel: slog.LevelInfo,
	}
	if diff := cmp.Diff(want, c, cmp.AllowUnexported(config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	env := map[string]string{
		"ADDR":              "0.0.0.0:9000",
		"AUTH_ISSUER":       "https://issuer.example/realms/shop",
		"AUTH_AUDIENCE":     "catalog",
		"AUTH_JWKS_URL":     "https://issuer.example/realms/shop/certs",
		"AUTH_TENANT_CLAIM": "tenant_id",
		"AUTH_TIER_CLAIM":   "tier",
		"AUTH_ROLES_CLAIM":  "realm_access.roles",
		"LOG_LEVEL":         "debug",
	}
	c, err := loadConfig(func(name string) string { return env[name] })
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		addr:     "0.0.0.0:9000",
		issuer:   "https://issuer.example/realms/shop",
		jwksURL:  "https://issuer.example/realms/shop/certs",
		audience: "catalog",
		mapping:  authz.ClaimMapping{Tenant: "tenant_id", Tier: "tier", Roles: "realm_access.roles", Scopes: "scope"},
		logLevel: slog.LevelDebug,
	}
	if diff := cmp.Diff(want, c, cmp.AllowUnexported(config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

// TestNoIssuerNoStart: the catalog has no development mode.
func TestNoIssuerNoStart(t *testing.T) {
	var stdout, stderr strings.Builder
	err := run(context.Background(), []string{"catalog"}, func(string) string { return "" }, &stdout, &stderr)
	if !errors.Is(err, errNoIssuer) {
		t.Fatalf("run without AUTH_ISSUER: %v, want errNoIssuer", err)
	}
	for _, want := range []string{"AUTH_ISSUER is required", "downstream service", "no development mode", "orders", "development banner", "AUTH_AUDIENCE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Errorf("run wrote before refusing: stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

func TestConfigErrors(t *testing.T) {
	base := map[string]string{"AUTH_ISSUER": "https://issuer.example", "AUTH_AUDIENCE": "orders-dev"}
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no audience", map[string]string{"AUTH_AUDIENCE": ""}, []string{"AUTH_AUDIENCE is required"}},
		{"relative issuer", map[string]string{"AUTH_ISSUER": "issuer.example"}, []string{`AUTH_ISSUER "issuer.example": want an absolute http or https URL`}},
		{"bad JWKS URL", map[string]string{"AUTH_JWKS_URL": "/certs"}, []string{`AUTH_JWKS_URL "/certs"`}},
		{"bad address", map[string]string{"ADDR": "8081"}, []string{`ADDR "8081": want host:port`}},
		{"bad port", map[string]string{"ADDR": "127.0.0.1:http"}, []string{`ADDR "127.0.0.1:http": the port must be a number`}},
		{"bad level", map[string]string{"LOG_LEVEL": "verbose"}, []string{`LOG_LEVEL "verbose": want debug, info, warn or error`}},
		{"padded", map[string]string{"AUTH_AUDIENCE": " orders-dev"}, []string{"AUTH_AUDIENCE has leading or trailing white space"}},
		{"every mistake at once", map[string]string{"AUTH_ISSUER": "", "AUTH_AUDIENCE": "", "LOG_LEVEL": "loud"},
			[]string{"AUTH_ISSUER is required", "AUTH_AUDIENCE is required", "LOG_LEVEL"}},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range c.env {
			env[k] = v
		}
		_, err := loadConfig(func(name string) string { return env[name] })
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.name, err, w)
			}
		}
	}
}

// TestUnreachableIssuer: the verifier is built at start, so an issuer
// that cannot be reached stops the service there.
func TestUnreachableIssuer(t *testing.T) {
	iss := startIssuer(t)
	url := iss.URL()
	iss.Close() // nothing listens there any more
	env := map[string]string{"ADDR": "127.0.0.1:0", "AUTH_ISSUER": url, "AUTH_AUDIENCE": "catalog-test"}
	var stdout, stderr strings.Builder
	err := run(context.Background(), []string{"catalog"}, func(name string) string { return env[name] }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "token verifier for AUTH_ISSUER "+url) {
		t.Fatalf("run with an unreachable issuer: %v", err)
	}
}

func TestUsage(t *testing.T) {
	var stdout, stderr strings.Builder
	if err := run(context.Background(), []string{"catalog", "-h"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ADDR", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL", "AUTH_TENANT_CLAIM", "AUTH_TIER_CLAIM", "AUTH_ROLES_CLAIM", "LOG_LEVEL"} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("usage does not mention %s", name)
		}
	}
	err := run(context.Background(), []string{"catalog", "serve"}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "serve"`) {
		t.Errorf("run with an argument: %v", err)
	}
}

func TestEmbeddedPrices(t *testing.T) {
	p, err := parsePrices(defaultPricesJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := map[tenant.Tier]int64{tiers.MustLookup("premium"): 10, tiers.MustLookup("platinum"): 20}
	if diff := cmp.Diff(want, p.discount, cmpopts.EquateComparable(tenant.Tier{})); diff != "" {
		t.Errorf("discounts (-want +got):\n%s", diff)
	}
	if _, ok := p.quote("anvil", tenant.Tier{}); !ok {
		t.Errorf("no anvil in the catalog")
	}
}

func TestPriceListErrors(t *testing.T) {
	for _, c := range []struct {
		json, want string
	}{
		{`{"unit_price_cents": {}}`, "no items"},
		{`{"unit_price_cents": {"anvil": 0}}`, `item "anvil": price 0 cents is out of range`},
		{`{"unit_price_cents": {" anvil": 5}}`, `item " anvil": empty, padded`},
		{`{"unit_price_cents": {"anvil": 5}, "discount_percent": {"gold": 5}}`, `tenant: unknown tier "gold"`},
		{`{"unit_price_cents": {"anvil": 5}, "discount_percent": {"premium": 101}}`, `discount_percent "premium": 101 is not from 0 to 100`},
		{`{"unit_price_cents": {"anvil": 5}, "discount_percent": {"premium": 5, "Premium": 6}}`, `tier "premium" is given twice`},
		{`{"unit_price_cents": {"anvil": 5}, "discounts": {}}`, `unknown field "discounts"`},
		{`{"unit_price_cents": {"anvil": 5.5}}`, "cannot unmarshal number 5.5"},
	} {
		if _, err := parsePrices([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parsePrices(%s): %v, want an error containing %q", c.json, err, c.want)
		}
	}
}
