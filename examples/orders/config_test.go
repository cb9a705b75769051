package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz"
)

func TestLoadConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want config
	}{
		{
			name: "empty: development mode on defaults",
			env:  nil,
			want: config{
				addr:    "127.0.0.1:8080",
				mapping: authz.Cognito,
				dev:     devConfig{issuerAddr: "127.0.0.1:0", tokenLifetime: 24 * time.Hour},
			},
		},
		{
			name: "development mode with its settings",
			env: map[string]string{
				"ADDR":               "0.0.0.0:9000",
				"DEV_ISSUER_ADDR":    "127.0.0.1:9001",
				"DEV_TOKEN_LIFETIME": "8h",
				"AUTH_TENANT_CLAIM":  "tenant_id",
			},
			want: config{
				addr:    "0.0.0.0:9000",
				mapping: authz.ClaimMapping{Tenant: "tenant_id", Tier: "custom:tenantTier", Roles: "cognito:groups", Scopes: "scope"},
				dev:     devConfig{issuerAddr: "127.0.0.1:9001", tokenLifetime: 8 * time.Hour},
			},
		},
		{
			name: "production with discovery",
			env: map[string]string{
				"AUTH_ISSUER":   "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
				"AUTH_AUDIENCE": "orders-api",
			},
			want: config{
				addr:     "127.0.0.1:8080",
				issuer:   "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
				audience: "orders-api",
				mapping:  authz.Cognito,
			},
		},
		{
			name: "production with everything",
			env: map[string]string{
				"ADDR":              ":8080",
				"AUTH_ISSUER":       "https://id.example.com/realms/shop",
				"AUTH_AUDIENCE":     "orders",
				"AUTH_JWKS_URL":     "https://id.example.com/realms/shop/protocol/openid-connect/certs",
				"AUTH_TENANT_CLAIM": "tenant_id",
				"AUTH_TIER_CLAIM":   "tier",
				"AUTH_ROLES_CLAIM":  "realm_access.roles",
			},
			want: config{
				addr:     ":8080",
				issuer:   "https://id.example.com/realms/shop",
				audience: "orders",
				jwksURL:  "https://id.example.com/realms/shop/protocol/openid-connect/certs",
				mapping:  authz.ClaimMapping{Tenant: "tenant_id", Tier: "tier", Roles: "realm_access.roles", Scopes: "scope"},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := loadConfig(func(n string) string { return c.env[n] })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(config{}, devConfig{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if got.devMode() != (c.env["AUTH_ISSUER"] == "") {
				t.Errorf("devMode() = %v with AUTH_ISSUER %q", got.devMode(), c.env["AUTH_ISSUER"])
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	const issuer = "https://issuer.example.com"
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string // each must appear in the error
	}{
		{"issuer without audience", map[string]string{"AUTH_ISSUER": issuer},
			[]string{"AUTH_AUDIENCE is required when AUTH_ISSUER is set"}},
		{"issuer not a URL", map[string]string{"AUTH_ISSUER": "cognito", "AUTH_AUDIENCE": "a"},
			[]string{"AUTH_ISSUER"}},
		{"issuer not http", map[string]string{"AUTH_ISSUER": "ftp://issuer.example.com", "AUTH_AUDIENCE": "a"},
			[]string{"AUTH_ISSUER"}},
		{"JWKS URL not a URL", map[string]string{"AUTH_ISSUER": issuer, "AUTH_AUDIENCE": "a", "AUTH_JWKS_URL": "/keys"},
			[]string{"AUTH_JWKS_URL"}},
		{"audience without issuer", map[string]string{"AUTH_AUDIENCE": "orders"},
			[]string{"AUTH_AUDIENCE is set but AUTH_ISSUER is not"}},
		{"JWKS URL without issuer", map[string]string{"AUTH_JWKS_URL": "https://issuer.example.com/keys"},
			[]string{"AUTH_JWKS_URL is set but AUTH_ISSUER is not"}},
		{"issuer and DEV_ISSUER_ADDR", map[string]string{"AUTH_ISSUER": issuer, "AUTH_AUDIENCE": "a", "DEV_ISSUER_ADDR": "127.0.0.1:0"},
			[]string{"DEV_ISSUER_ADDR is a development-mode setting and cannot be combined with AUTH_ISSUER"}},
		{"issuer and DEV_TOKEN_LIFETIME", map[string]string{"AUTH_ISSUER": issuer, "AUTH_AUDIENCE": "a", "DEV_TOKEN_LIFETIME": "1h"},
			[]string{"DEV_TOKEN_LIFETIME is a development-mode setting"}},
		{"ADDR without port", map[string]string{"ADDR": "localhost"}, []string{"ADDR"}},
		{"ADDR with a bad port", map[string]string{"ADDR": "127.0.0.1:http-alt"}, []string{"ADDR"}},
		{"ADDR port out of range", map[string]string{"ADDR": "127.0.0.1:70000"}, []string{"ADDR"}},
		{"DEV_ISSUER_ADDR without port", map[string]string{"DEV_ISSUER_ADDR": "127.0.0.1"}, []string{"DEV_ISSUER_ADDR"}},
		{"DEV_TOKEN_LIFETIME not a duration", map[string]string{"DEV_TOKEN_LIFETIME": "forever"}, []string{"DEV_TOKEN_LIFETIME"}},
		{"DEV_TOKEN_LIFETIME too short", map[string]string{"DEV_TOKEN_LIFETIME": "10s"}, []string{"DEV_TOKEN_LIFETIME"}},
		{"DEV_TOKEN_LIFETIME too long", map[string]string{"DEV_TOKEN_LIFETIME": "720h"}, []string{"DEV_TOKEN_LIFETIME"}},
		{"claim with white space", map[string]string{"AUTH_TENANT_CLAIM": "tenant_id "}, []string{"AUTH_TENANT_CLAIM has leading or trailing white space"}},
		{"every mistake at once", map[string]string{"ADDR": "nope", "AUTH_ISSUER": "nope", "DEV_TOKEN_LIFETIME": "1h"},
			[]string{"ADDR", "AUTH_ISSUER", "AUTH_AUDIENCE", "DEV_TOKEN_LIFETIME"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(func(n string) string { return c.env[n] })
			if err == nil {
				t.Fatalf("no error, want one naming %v", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
