package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

// redisFor starts a Redis for the test and returns it with a client,
// closed when the test ends.
func redisFor(t *testing.T) (*testservers.RedisServer, *redis.Client) {
	t.Helper()
	r := testservers.Redis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return r, c
}

// streamEntries returns the entries of the events stream.
func streamEntries(t *testing.T, c *redis.Client) []redis.XMessage {
	t.Helper()
	entries, err := c.XRange(context.Background(), defaultEventsStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// entryMessage reads an entry as redisstream's consumer does.
func entryMessage(e redis.XMessage) *message.Message {
	m := &message.Message{ID: e.ID, Source: defaultEventsStream, Attributes: map[string]string{}}
	for k, v := range e.Values {
		if k == "body" {
			m.Body = []byte(v.(string))
		} else if name, ok := strings.CutPrefix(k, "attr:"); ok {
			m.Attributes[name] = v.(string)
		}
	}
	return m
}

// TestOrderEventsAreStamped: each order placed is published once to the
// stream, as order.created with the order, stamped for fulfillment with
// the caller's tenant and the request's trace; a verifier that fetches
// the service's JWK Set from /.well-known/jwks.json, with no token, runs
// it as that tenant, and refuses it for another destination.
func TestOrderEventsAreStamped(t *testing.T) {
	_, rc := redisFor(t)
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"REDIS_URL": "redis://" + rc.Options().Addr + "/0"})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	acme := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	r := svc.Do(t, "POST", "/orders", acme, `{"item":"anvil","quantity":2}`,
		http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /orders: %d %s", r.Status, r.Body)
	}
	placed := decodeOrder(t, r.Body)
	svc.create(t, iss.MustMint("globex", "basic", authztest.WithSubject("eve")), "bolt", 1)

	entries := streamEntries(t, rc)
	if len(entries) != 2 {
		t.Fatalf("%d entries in the stream, want 2: %v", len(entries), entries)
	}
	m := entryMessage(entries[0])
	var ev orderEvent
	if err := json.Unmarshal(m.Body, &ev); err != nil || ev.Type != "order.created" || ev.Order.ID != placed.ID || ev.Order.TenantID != "acme" {
		t.Fatalf("event %s (%v), want order.created of %s", m.Body, err, placed.ID)
	}
	if m.Attributes[stamp.Attribute] == "" || !strings.Contains(m.Attributes["traceparent"], traceID) {
		t.Errorf("attributes %v: want a stamp and the request's trace %s", m.Attributes, traceID)
	}

	ctx := context.Background()
	v, err := stamp.NewVerifier(ctx, defaultStampIssuer, stamp.WithJWKSURL(svc.URL+stampJWKSPath), stamp.ForDestination("fulfillment"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var ran []string
	h := stamp.Trusted(v)(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		ran = append(ran, tn.ID+"/"+tn.Tier.String()+"/"+tn.Subject)
		return nil
	}))
	for _, e := range entries {
		if err := h.HandleMessage(ctx, entryMessage(e)); err != nil {
			t.Errorf("entry %s: %v", e.ID, err)
		}
	}
	if got := strings.Join(ran, " "); got != "acme/premium/alice globex/basic/eve" {
		t.Errorf("ran as %q, want acme's then globex's", got)
	}
	elsewhere, err := stamp.NewVerifier(ctx, defaultStampIssuer, stamp.WithJWKSURL(svc.URL+stampJWKSPath), stamp.ForDestination("billing"))
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Close()
	err = stamp.Trusted(elsewhere)(message.HandlerFunc(func(context.Context, *message.Message) error { return nil })).
		HandleMessage(ctx, entryMessage(entries[1]))
	if _, _, reason := message.OutcomeOf(err); reason != "stamp:destination" {
		t.Errorf("another destination: %v, want stamp:destination", err)
	}
}

// TestOrderEventsWaitForRedis: with Redis down, an order is still stored
// and answered 201, its event is kept, and it reaches the stream, once
// and in order with the next, when Redis is back.
func TestOrderEventsWaitForRedis(t *testing.T) {
	rs, rc := redisFor(t)
	retry := make(chan struct{})
	iss := startIssuer(t)
	// One replica: while Redis is away it admits the whole of the limits.
	svc := startForIssuer(t, iss, map[string]string{"REDIS_URL": "redis://" + rs.Addr + "/0", "THROTTLE_REPLICAS": "1"}, withEventRetry(retry))
	acme := iss.MustMint("acme", "premium")
	svc.list(t, "/orders", acme) // the throttle has seen acme: its share continues while Redis is away

	rs.Stop()
	first := svc.create(t, acme, "anvil", 1)
	second := svc.create(t, acme, "bolt", 1)
	if got := svc.list(t, "/orders", acme); len(got) != 2 {
		t.Fatalf("%d orders stored while Redis was down, want 2", len(got))
	}
	lines := svc.Lines(t)
	if n := len(servicetest.LinesWhere(lines, servicetest.LogLine{"msg": "order event kept for retry: publishing failed", "order_id": first.ID})); n != 1 {
		t.Errorf("%d lines of the first event kept, want 1", n)
	}
	if n := len(servicetest.LinesWhere(lines, servicetest.LogLine{"msg": "order event kept for retry: earlier events wait", "order_id": second.ID})); n != 1 {
		t.Errorf("%d lines of the second event kept behind the first, want 1", n)
	}

	retry <- struct{}{} // Redis still down: nothing goes out
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	retry <- struct{}{}
	retry <- struct{}{} // taken once the flush before it has returned

	entries := streamEntries(t, rc)
	var got []string
	for _, e := range entries {
		var ev orderEvent
		json.Unmarshal(entryMessage(e).Body, &ev)
		got = append(got, ev.Order.ID)
	}
	if strings.Join(got, " ") != first.ID+" "+second.ID {
		t.Errorf("stream holds the events of %v, want %s then %s, once each", got, first.ID, second.ID)
	}
	if n := len(servicetest.LinesWhere(svc.Lines(t), servicetest.LogLine{"msg": "order event published after a retry"})); n != 2 {
		t.Errorf("%d events published after a retry, want 2", n)
	}
}

// TestOrderEventsLostAtShutdownAreReported: an event still kept when the
// service stops (Redis never came back) is logged as lost with its order
// and tenant, and the service exits with an error saying how many.
func TestOrderEventsLostAtShutdownAreReported(t *testing.T) {
	rs, _ := redisFor(t)
	iss := startIssuer(t)
	env := servicetest.IssuerEnv(iss, map[string]string{"REDIS_URL": "redis://" + rs.Addr + "/0", "THROTTLE_REPLICAS": "1"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := new(syncbuf.Buffer), new(syncbuf.Buffer)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"orders"}, func(k string) string { return env[k] }, stdout, stderr, withReady(func(a string) { ready <- a }))
	}()
	svc := &service{&servicetest.Service{URL: "http://" + <-ready, Client: servicetest.NewClient(t)}}
	globex := iss.MustMint("globex", "basic")
	svc.list(t, "/orders", globex) // the throttle has seen globex
	rs.Stop()
	o := svc.create(t, globex, "anvil", 1)
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "1 order events not published") {
		t.Fatalf("run returned %v, want the event not published", err)
	}
	servicetest.OneLine(t, servicetest.ParseLines(t, stdout.String()),
		servicetest.LogLine{"msg": "order event lost: not published by shutdown", "order_id": o.ID, "tenant_id": "globex", "level": "ERROR"})
}
