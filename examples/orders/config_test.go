package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/throttle"
)

// builtinTiers are the limits documented for an unset TIERS_FILE; the
// embedded tiers.json must say exactly this.
var builtinTiers = map[string]throttle.Limits{
	"basic":    {Rate: 5, Burst: 10},
	"standard": {Rate: 50, Burst: 100},
	"premium":  {Rate: 500, Burst: 1000},
	"platinum": {Rate: 2000, Burst: 4000},
}

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
				addr:       "127.0.0.1:8080",
				mapping:    authz.Cognito(),
				tierLimits: builtinTiers,
				dev:        devConfig{issuerAddr: "127.0.0.1:0", tokenLifetime: 24 * time.Hour},
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
				addr:       "0.0.0.0:9000",
				mapping:    authz.ClaimMapping{Tenant: "tenant_id", Tier: "custom:tenantTier", Roles: "cognito:groups", Scopes: "scope"},
				tierLimits: builtinTiers,
				dev:        devConfig{issuerAddr: "127.0.0.1:9001", tokenLifetime: 8 * time.Hour},
			},
		},
		{
			name: "production with discovery",
			env: map[string]string{
				"AUTH_ISSUER":   "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
				"AUTH_AUDIENCE": "orders-api",
			},
			want: config{
				addr:       "127.0.0.1:8080",
				issuer:     "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
				audience:   "orders-api",
				mapping:    authz.Cognito(),
				tierLimits: builtinTiers,
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
				addr:       ":8080",
				issuer:     "https://id.example.com/realms/shop",
				audience:   "orders",
				jwksURL:    "https://id.example.com/realms/shop/protocol/openid-connect/certs",
				mapping:    authz.ClaimMapping{Tenant: "tenant_id", Tier: "tier", Roles: "realm_access.roles", Scopes: "scope"},
				tierLimits: builtinTiers,
			},
		},
		{
			name: "the whole stack",
			env: map[string]string{
				"DYNAMODB_ENDPOINT":   "http://127.0.0.1:4567",
				"AWS_TENANT_ROLE_ARN": "arn:aws:iam::123456789012:role/orders-tenant",
				"CATALOG_URL":         "http://127.0.0.1:8081/",
				"METER_FILE":          "usage.jsonl",
				"LOG_LEVEL":           "debug",
			},
			want: config{
				addr:           "127.0.0.1:8080",
				mapping:        authz.Cognito(),
				tierLimits:     builtinTiers,
				dynamoEndpoint: "http://127.0.0.1:4567",
				ordersTable:    "orders", // the default with an endpoint
				tenantRoleARN:  "arn:aws:iam::123456789012:role/orders-tenant",
				catalogURL:     "http://127.0.0.1:8081",
				meterFile:      "usage.jsonl",
				logLevel:       slog.LevelDebug,
				dev:            devConfig{issuerAddr: "127.0.0.1:0", tokenLifetime: 24 * time.Hour},
			},
		},
		{
			name: "DynamoDB in AWS",
			env: map[string]string{
				"AUTH_ISSUER":   "https://id.example.com",
				"AUTH_AUDIENCE": "orders",
				"ORDERS_TABLE":  "prod.orders-v2",
				"LOG_LEVEL":     "WARN",
			},
			want: config{
				addr:        "127.0.0.1:8080",
				issuer:      "https://id.example.com",
				audience:    "orders",
				mapping:     authz.Cognito(),
				tierLimits:  builtinTiers,
				ordersTable: "prod.orders-v2",
				logLevel:    slog.LevelWarn,
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := loadConfig(func(n string) string { return c.env[n] })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(withEventDefaults(c.want), got, cmp.AllowUnexported(config{}, devConfig{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if got.devMode() != (c.env["AUTH_ISSUER"] == "") {
				t.Errorf("devMode() = %v with AUTH_ISSUER %q", got.devMode(), c.env["AUTH_ISSUER"])
			}
		})
	}
}

// writeFile writes content to a file named name in a folder of the test
// and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigLimits(t *testing.T) {
	tiersFile := writeFile(t, "tiers.json", `{
		"basic":    {"rate": 1, "burst": 2, "quotas": [{"limit": 1000, "period": "day"}]},
		"standard": {"rate": 10, "burst": 20, "max_concurrent": 4},
		"premium":  {"rate": 100, "burst": 200, "on_store_failure": "open"},
		"platinum": {"rate": 1000, "burst": 2000, "on_store_failure": "closed"}
	}`)
	overridesFile := writeFile(t, "overrides.json", `{"acme": {"rate": 0.5, "burst": 50}}`)
	got, err := loadConfig(func(n string) string {
		return map[string]string{
			"TIERS_FILE":            tiersFile,
			"TENANT_OVERRIDES_FILE": overridesFile,
			"REDIS_URL":             "redis://:secret@127.0.0.1:6379/2",
		}[n]
	})
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		addr:      "127.0.0.1:8080",
		mapping:   authz.Cognito(),
		tiersFile: tiersFile,
		tierLimits: map[string]throttle.Limits{
			"basic":    {Rate: 1, Burst: 2, Quotas: []throttle.Quota{{Limit: 1000, Period: throttle.Day}}},
			"standard": {Rate: 10, Burst: 20, MaxConcurrent: 4},
			"premium":  {Rate: 100, Burst: 200, OnStoreFailure: throttle.FailOpen},
			"platinum": {Rate: 1000, Burst: 2000, OnStoreFailure: throttle.FailClosed},
		},
		overridesFile: overridesFile,
		overrides:     map[string]throttle.Limits{"acme": {Rate: 0.5, Burst: 50}},
		redisURL:      "redis://:secret@127.0.0.1:6379/2",
		dev:           devConfig{issuerAddr: "127.0.0.1:0", tokenLifetime: 24 * time.Hour},
	}
	if diff := cmp.Diff(withEventDefaults(want), got, cmp.AllowUnexported(config{}, devConfig{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

// withEventDefaults returns c with the defaults of the order events'
// settings where c has none.
func withEventDefaults(c config) config {
	if c.eventsStream == "" {
		c.eventsStream = defaultEventsStream
	}
	if c.events == "" {
		c.events = eventsMemory
		if c.redisURL != "" {
			c.events = eventsRedis
		}
	}
	if c.stampIssuer == "" {
		c.stampIssuer = defaultStampIssuer
	}
	return c
}

func TestLoadConfigStamps(t *testing.T) {
	got, err := loadConfig(func(n string) string {
		return map[string]string{
			"ORDER_EVENTS_STREAM": "orders:events",
			"STAMP_ISSUER":        "https://orders.acme.example",
			"STAMP_KEY_FILE":      "stamp.pem",
			"STAMP_KEY_ID":        "2026-11",
			"STAMP_MAX_AGE":       "2h",
		}[n]
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.eventsStream != "orders:events" || got.stampIssuer != "https://orders.acme.example" || got.stampKeyFile != "stamp.pem" ||
		got.stampKeyID != "2026-11" || got.stampMaxAge != 2*time.Hour {
		t.Errorf("config %+v: want every stamp setting read", got)
	}
}

// TestLoadConfigEvents: ORDER_EVENTS, when unset, follows
// KINESIS_ENDPOINT, then REDIS_URL; set, it wins over REDIS_URL, which
// keeps the limits.
func TestLoadConfigEvents(t *testing.T) {
	const redisURL, kinesisURL = "redis://127.0.0.1:6379/0", "http://127.0.0.1:4568"
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "memory"},
		{map[string]string{"REDIS_URL": redisURL}, "redis"},
		{map[string]string{"KINESIS_ENDPOINT": kinesisURL}, "kinesis"},
		{map[string]string{"KINESIS_ENDPOINT": kinesisURL, "REDIS_URL": redisURL}, "kinesis"},
		{map[string]string{"ORDER_EVENTS": "kinesis"}, "kinesis"}, // AWS's endpoint
		{map[string]string{"ORDER_EVENTS": "memory", "REDIS_URL": redisURL}, "memory"},
		{map[string]string{"ORDER_EVENTS": "kinesis", "REDIS_URL": redisURL}, "kinesis"},
	} {
		got, err := loadConfig(func(n string) string { return c.env[n] })
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if got.events != c.want || got.kinesisEndpoint != c.env["KINESIS_ENDPOINT"] {
			t.Errorf("%v: events %q at %q, want %q", c.env, got.events, got.kinesisEndpoint, c.want)
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	const issuer = "https://issuer.example.com"
	missing := filepath.Join(t.TempDir(), "missing.json")
	badBurst := writeFile(t, "orders-tiers.json", `{"basic": {"rate": 5, "burst": 0}}`)
	notJSON := writeFile(t, "tiers.json", `{"basic": {"rate": 5, "burst": 10},}`)
	unknownField := writeFile(t, "tiers.json", `{"basic": {"rate": 5, "brust": 10}}`)
	badID := writeFile(t, "overrides.json", `{"acme\u0000": {"rate": 5, "burst": 10}}`)
	badPeriod := writeFile(t, "overrides.json", `{"acme": {"rate": 5, "burst": 10, "quotas": [{"limit": 5, "period": "week"}]}}`)
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
		{"TIERS_FILE missing", map[string]string{"TIERS_FILE": missing},
			[]string{"TIERS_FILE " + missing + ": no such file or directory"}},
		{"TIERS_FILE with an invalid limit", map[string]string{"TIERS_FILE": badBurst},
			[]string{"TIERS_FILE " + badBurst + `: throttle: limits "basic": Burst must be at least 1, got 0`}},
		{"TIERS_FILE not JSON", map[string]string{"TIERS_FILE": notJSON},
			[]string{"TIERS_FILE " + notJSON + ": throttle: limits: invalid character"}},
		{"TIERS_FILE with an unknown field", map[string]string{"TIERS_FILE": unknownField},
			[]string{"TIERS_FILE " + unknownField + ": ", `unknown field "brust"`}},
		{"TIERS_FILE a folder", map[string]string{"TIERS_FILE": t.TempDir()},
			[]string{"TIERS_FILE "}},
		{"TENANT_OVERRIDES_FILE missing", map[string]string{"TENANT_OVERRIDES_FILE": missing},
			[]string{"TENANT_OVERRIDES_FILE " + missing + ": no such file or directory"}},
		{"TENANT_OVERRIDES_FILE with a bad tenant ID", map[string]string{"TENANT_OVERRIDES_FILE": badID},
			[]string{"TENANT_OVERRIDES_FILE " + badID + `: "acme\x00": tenant: invalid tenant ID`}},
		{"TENANT_OVERRIDES_FILE with a bad period", map[string]string{"TENANT_OVERRIDES_FILE": badPeriod},
			[]string{"TENANT_OVERRIDES_FILE " + badPeriod + ": ", `unknown period "week"`}},
		{"REDIS_URL without a scheme", map[string]string{"REDIS_URL": "127.0.0.1:6379"}, []string{"REDIS_URL"}},
		{"REDIS_URL of another scheme", map[string]string{"REDIS_URL": "http://127.0.0.1:6379"},
			[]string{`REDIS_URL "http://127.0.0.1:6379": redis: invalid URL scheme: http`}},
		{"REDIS_URL with a bad database", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/zero"},
			[]string{`REDIS_URL "redis://127.0.0.1:6379/zero": redis: invalid database number`}},
		{"REDIS_URL with a password and a bad database", map[string]string{"REDIS_URL": "redis://:hunter2@127.0.0.1:6379/zero"},
			[]string{`REDIS_URL "redis://:xxxxx@127.0.0.1:6379/zero": redis: invalid database number`}},
		{"REDIS_URL with a bad port", map[string]string{"REDIS_URL": "redis://:hunter2@127.0.0.1:port/0"},
			[]string{"REDIS_URL: invalid port"}},
		{"LOG_LEVEL unknown", map[string]string{"LOG_LEVEL": "trace"}, []string{`LOG_LEVEL "trace": want debug, info, warn or error`}},
		{"DYNAMODB_ENDPOINT not a URL", map[string]string{"DYNAMODB_ENDPOINT": "127.0.0.1:4567"}, []string{`DYNAMODB_ENDPOINT "127.0.0.1:4567"`}},
		{"ORDERS_TABLE too short", map[string]string{"ORDERS_TABLE": "or"}, []string{`ORDERS_TABLE "or": a DynamoDB table name`}},
		{"ORDERS_TABLE with a slash", map[string]string{"ORDERS_TABLE": "tenants/orders"}, []string{`ORDERS_TABLE "tenants/orders"`}},
		{"AWS_TENANT_ROLE_ARN without DynamoDB", map[string]string{"AWS_TENANT_ROLE_ARN": "arn:aws:iam::123456789012:role/orders-tenant"},
			[]string{"AWS_TENANT_ROLE_ARN is set but the orders are kept in memory"}},
		{"AWS_TENANT_ROLE_ARN not a role", map[string]string{"ORDERS_TABLE": "orders", "AWS_TENANT_ROLE_ARN": "arn:aws:iam::123456789012:user/orders"},
			[]string{`AWS_TENANT_ROLE_ARN "arn:aws:iam::123456789012:user/orders": want a role ARN`}},
		{"CATALOG_URL not a URL", map[string]string{"CATALOG_URL": "catalog:8081"}, []string{`CATALOG_URL "catalog:8081"`}},
		{"CATALOG_URL with a query", map[string]string{"CATALOG_URL": "http://catalog/?x=1"}, []string{"CATALOG_URL", "without user, query or fragment"}},
		{"CATALOG_URL with a password", map[string]string{"CATALOG_URL": "http://u:hunter2@catalog/"}, []string{"CATALOG_URL", "without user"}},
		{"STAMP_ISSUER not a URL", map[string]string{"STAMP_ISSUER": "orders"}, []string{`STAMP_ISSUER "orders": want an absolute http or https URL`}},
		{"STAMP_KEY_ID without STAMP_KEY_FILE", map[string]string{"STAMP_KEY_ID": "k1"}, []string{"STAMP_KEY_ID is set but STAMP_KEY_FILE is not"}},
		{"STAMP_MAX_AGE too short", map[string]string{"STAMP_MAX_AGE": "10s"}, []string{`STAMP_MAX_AGE "10s": want a duration from 1m to 168h0m0s`}},
		{"STAMP_MAX_AGE not a duration", map[string]string{"STAMP_MAX_AGE": "a day"}, []string{`STAMP_MAX_AGE "a day"`}},
		{"ORDER_EVENTS unknown", map[string]string{"ORDER_EVENTS": "sqs"}, []string{`ORDER_EVENTS "sqs": want redis, kinesis or memory`}},
		{"ORDER_EVENTS redis without REDIS_URL", map[string]string{"ORDER_EVENTS": "redis"},
			[]string{"ORDER_EVENTS is redis but REDIS_URL is not set"}},
		{"KINESIS_ENDPOINT with ORDER_EVENTS redis", map[string]string{"ORDER_EVENTS": "redis", "REDIS_URL": "redis://127.0.0.1:6379/0", "KINESIS_ENDPOINT": "http://127.0.0.1:4568"},
			[]string{"KINESIS_ENDPOINT is set but ORDER_EVENTS is redis"}},
		{"KINESIS_ENDPOINT with ORDER_EVENTS memory", map[string]string{"ORDER_EVENTS": "memory", "KINESIS_ENDPOINT": "http://127.0.0.1:4568"},
			[]string{"KINESIS_ENDPOINT is set but ORDER_EVENTS is memory"}},
		{"KINESIS_ENDPOINT not a URL", map[string]string{"KINESIS_ENDPOINT": "127.0.0.1:4568"}, []string{`KINESIS_ENDPOINT "127.0.0.1:4568"`}},
		{"ORDER_EVENTS_STREAM not a Kinesis name", map[string]string{"KINESIS_ENDPOINT": "http://127.0.0.1:4568", "ORDER_EVENTS_STREAM": "orders:events"},
			[]string{`ORDER_EVENTS_STREAM "orders:events": a Kinesis stream name`}},
		{"every limits mistake at once", map[string]string{"TIERS_FILE": missing, "TENANT_OVERRIDES_FILE": badID, "REDIS_URL": "nope://"},
			[]string{"TIERS_FILE", "TENANT_OVERRIDES_FILE", "REDIS_URL"}},
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
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password of REDIS_URL", err)
			}
		})
	}
}

// TestBuiltinTiersCoverEveryTier checks the embedded tiers.json against
// the tiers the service sells: throttle.New would refuse it otherwise.
func TestBuiltinTiersCoverEveryTier(t *testing.T) {
	if diff := cmp.Diff(slices.Sorted(slices.Values(tiers.Names())), sortedNames(builtinTiers)); diff != "" {
		t.Errorf("builtinTiers do not name every tier (-want +got):\n%s", diff)
	}
	if _, err := throttle.New(tiers, defaultTierLimits()); err != nil {
		t.Fatal(err)
	}
}
