package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// TestFulfillerRefusesWhatIsNotItsTenants: the handler rejects a body it
// cannot read and an order of another tenant than the stamp's (the
// context's), and acknowledges an order fulfilled before without counting
// it again.
func TestFulfillerRefusesWhatIsNotItsTenants(t *testing.T) {
	f := newFulfiller(slog.New(slog.NewTextHandler(io.Discard, nil)))
	acme := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("basic"), Source: tenant.SourceToken})
	event := func(tenantID string) []byte {
		return []byte(`{"type":"order.created","order":{"id":"o1","tenant_id":"` + tenantID + `","item":"anvil","quantity":1}}`)
	}
	for _, c := range []struct {
		name   string
		ctx    context.Context
		body   []byte
		reason string // "" for acked
	}{
		{"not JSON", acme, []byte("{"), "handler:invalid_event"},
		{"another type", acme, []byte(`{"type":"order.cancelled","order":{"id":"o1","tenant_id":"acme"}}`), "handler:invalid_event"},
		{"no order ID", acme, []byte(`{"type":"order.created","order":{"tenant_id":"acme"}}`), "handler:invalid_event"},
		{"another tenant's order", acme, event("globex"), "handler:tenant_mismatch"},
		{"no tenant", context.Background(), event("acme"), "handler:tenant_missing"},
		{"acme's order", acme, event("acme"), ""},
		{"acme's order again", acme, event("acme"), ""},
	} {
		err := f.HandleMessage(c.ctx, &message.Message{ID: "1-0", Body: c.body})
		if _, _, reason := message.OutcomeOf(err); reason != c.reason {
			t.Errorf("%s: %v (reason %q), want %q", c.name, err, reason, c.reason)
		}
	}
	if n := len(f.fulfilled["acme"]); n != 1 || len(f.fulfilled) != 1 {
		t.Errorf("fulfilled %v, want acme's o1 only", f.fulfilled)
	}
}

func TestLoadConfig(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.stream != "order-events" || c.group != "fulfillment" || c.stampIssuer != "https://orders.example" ||
		c.jwksURL != "http://127.0.0.1:8080/.well-known/jwks.json" || c.consumer == "" || len(c.tierLimits) != 4 ||
		c.workers != 8 || c.concurrency != 80 {
		t.Errorf("defaults %+v", c)
	}
	_, err = loadConfig(func(name string) string {
		return map[string]string{
			"ADDR": "nope", "REDIS_URL": "http://:hunter2@redis:6379", "ORDERS_STAMP_ISSUER": "orders",
			"ORDERS_JWKS_URL": "/keys", "TIERS_FILE": "missing.json", "LOG_LEVEL": "trace",
			"WORKERS": "0", "CONSUMER_CONCURRENCY": "many",
		}[name]
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"ADDR", "REDIS_URL", "ORDERS_STAMP_ISSUER", "ORDERS_JWKS_URL", "TIERS_FILE missing.json", "LOG_LEVEL", `WORKERS "0"`, `CONSUMER_CONCURRENCY "many"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q shows the password of REDIS_URL", err)
	}
}
