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

// TestLoadConfigEvents: ORDER_EVENTS follows orders' rules (kinesis with
// KINESIS_ENDPOINT, else redis), the Kinesis defaults (the dead-letter
// stream, the checkpoint table with DYNAMODB_ENDPOINT), and every setting
// the chosen transport would ignore is refused, named.
func TestLoadConfigEvents(t *testing.T) {
	load := func(vars map[string]string) (config, error) {
		return loadConfig(func(name string) string { return vars[name] })
	}
	c, err := load(map[string]string{"KINESIS_ENDPOINT": "http://127.0.0.1:4568"})
	if err != nil {
		t.Fatal(err)
	}
	if c.events != eventsKinesis || c.deadLetter != "order-events-dead" || c.checkpointTable != "" || c.redisURL != "" ||
		c.checkpointPrefix() != "fulfillment/order-events" {
		t.Errorf("KINESIS_ENDPOINT alone: %+v", c)
	}
	c, err = load(map[string]string{"KINESIS_ENDPOINT": "http://127.0.0.1:4568", "DYNAMODB_ENDPOINT": "http://127.0.0.1:4567"})
	if err != nil || c.checkpointTable != defaultCheckpointTable {
		t.Errorf("DYNAMODB_ENDPOINT: table %q, %v; want %q", c.checkpointTable, err, defaultCheckpointTable)
	}
	c, err = load(map[string]string{"ORDER_EVENTS": "kinesis", "CHECKPOINT_TABLE": "checkpoints"})
	if err != nil || c.events != eventsKinesis || c.checkpointTable != "checkpoints" || c.kinesisEndpoint != "" {
		t.Errorf("ORDER_EVENTS=kinesis in AWS: %+v, %v", c, err)
	}
	c, err = load(map[string]string{"REDIS_URL": "redis://10.0.0.1:6379/0"})
	if err != nil || c.events != eventsRedis || c.deadLetter != "order-events:dead" || c.redisURL != "redis://10.0.0.1:6379/0" {
		t.Errorf("REDIS_URL: %+v, %v", c, err)
	}
	for _, bad := range []struct {
		vars map[string]string
		want []string
	}{
		{map[string]string{"ORDER_EVENTS": "memory"}, []string{"ORDER_EVENTS is memory"}},
		{map[string]string{"ORDER_EVENTS": "sqs"}, []string{`ORDER_EVENTS "sqs"`}},
		{map[string]string{"ORDER_EVENTS": "redis", "KINESIS_ENDPOINT": "http://127.0.0.1:4568"}, []string{"KINESIS_ENDPOINT is set but ORDER_EVENTS is redis"}},
		{map[string]string{"DYNAMODB_ENDPOINT": "http://127.0.0.1:4567", "CHECKPOINT_TABLE": "cp"}, []string{"DYNAMODB_ENDPOINT is set but ORDER_EVENTS is redis", "CHECKPOINT_TABLE is set but ORDER_EVENTS is redis"}},
		{map[string]string{
			"KINESIS_ENDPOINT": "http://127.0.0.1:4568", "REDIS_URL": "redis://127.0.0.1:6379/0",
			"CONSUMER_NAME": "w1", "CONSUMER_CONCURRENCY": "10",
		}, []string{"REDIS_URL is set but ORDER_EVENTS is kinesis", "CONSUMER_NAME is set", "CONSUMER_CONCURRENCY is set"}},
		{map[string]string{
			"ORDER_EVENTS": "kinesis", "ORDER_EVENTS_STREAM": "order:events", "DEAD_LETTER_STREAM": "dead letters",
			"CHECKPOINT_TABLE": "cp", "CONSUMER_GROUP": "a/b", "KINESIS_ENDPOINT": "kinesis",
		}, []string{`ORDER_EVENTS_STREAM "order:events"`, `DEAD_LETTER_STREAM "dead letters"`, `CHECKPOINT_TABLE "cp"`, `CONSUMER_GROUP "a/b"`, `KINESIS_ENDPOINT "kinesis"`}},
		{map[string]string{"ORDER_EVENTS": "kinesis", "DEAD_LETTER_STREAM": "order-events"}, []string{"is ORDER_EVENTS_STREAM"}},
	} {
		_, err := load(bad.vars)
		if err == nil {
			t.Errorf("%v: no error", bad.vars)
			continue
		}
		for _, want := range bad.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: error %q does not say %q", bad.vars, err, want)
			}
		}
	}
}
