package throttle_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// deliver runs one message of acme (premium) through the limiter's
// message middleware and returns its outcome.
func deliver(t *testing.T, l *throttle.Limiter) (message.Outcome, time.Duration, bool) {
	t.Helper()
	ran := false
	h := message.BoundQueue("acme", tiers.MustLookup("premium"))(l.MessageMiddleware()(message.HandlerFunc(func(context.Context, *message.Message) error {
		ran = true
		return nil
	})))
	o, after, _ := message.OutcomeOf(h.HandleMessage(context.Background(), &message.Message{ID: "1"}))
	return o, after, ran
}

// TestMessageMiddlewareQuota: a tenant whose quota is spent has its
// messages deferred until the period resets, not dead-lettered.
func TestMessageMiddlewareQuota(t *testing.T) {
	clk := newClock(start.Add(30 * time.Minute)) // 12:30
	limits := tierLimits()
	limits["premium"] = throttle.Limits{Rate: 100, Burst: 100, Quotas: []throttle.Quota{{Limit: 2, Period: throttle.Hour}}}
	l := newLimiter(t, clk, limits)
	for i := range 2 {
		if o, _, ran := deliver(t, l); o != message.Acked || !ran {
			t.Fatalf("message %d: %v (ran %v), want acked", i+1, o, ran)
		}
	}
	if o, after, ran := deliver(t, l); o != message.Deferred || after != 30*time.Minute || ran {
		t.Fatalf("over quota: %v for %v (ran %v), want deferred until 13:00", o, after, ran)
	}
	clk.Set(start.Add(time.Hour))
	if o, _, _ := deliver(t, l); o != message.Acked {
		t.Fatalf("after the reset: %v, want acked", o)
	}
}

// TestMessageMiddlewareStoreDown: while the store cannot decide, a
// message is deferred, never dead-lettered for it.
func TestMessageMiddlewareStoreDown(t *testing.T) {
	fs := &fakeStore{err: errors.New("redis: connection refused")}
	l := newLimiter(t, newClock(start), nil, throttle.WithStore(fs), throttle.WithLogger(slog.New(slog.DiscardHandler)))
	if o, after, ran := deliver(t, l); o != message.Deferred || after < time.Second || ran {
		t.Fatalf("store down: %v for %v (ran %v), want deferred by a second or more", o, after, ran)
	}
}

// TestMessageMiddlewareNoTenant: a message with no tenant the throttle may
// charge is dead-lettered: no delivery can give it one.
func TestMessageMiddlewareNoTenant(t *testing.T) {
	l := newLimiter(t, newClock(start), nil)
	h := message.UnverifiedAttribute("tenant")(l.MessageMiddleware()(message.HandlerFunc(func(context.Context, *message.Message) error { return nil })))
	err := h.HandleMessage(context.Background(), &message.Message{ID: "1", Attributes: map[string]string{"tenant": "acme"}})
	if o, _, reason := message.OutcomeOf(err); o != message.Rejected || reason != "throttle:tenant_required" || !errors.Is(err, tenant.ErrNoTenant) {
		t.Fatalf("claimed tenant: %v %q (%v), want rejected throttle:tenant_required", o, reason, err)
	}
}

// TestMessagesShareTheRequestsBudget: a tenant's messages and requests
// through one Limiter spend one budget; a Limiter of another name keeps
// its own.
func TestMessagesShareTheRequestsBudget(t *testing.T) {
	clk := newClock(start)
	limits := tierLimits()
	limits["premium"] = throttle.Limits{Rate: 1, Burst: 1}
	shared := newLimiter(t, clk, limits)
	apart := newLimiter(t, clk, limits, throttle.WithName("messages"))
	acme := mustTenant(t, "acme", tiers.MustLookup("premium"))
	if w, _ := serve(shared.Middleware()(okHandler), &acme, get("/orders")); w.Code != http.StatusOK {
		t.Fatalf("request: %d", w.Code)
	}
	if o, _, _ := deliver(t, shared); o != message.Deferred {
		t.Errorf("a message after the request spent the burst: %v, want deferred", o)
	}
	if o, _, _ := deliver(t, apart); o != message.Acked {
		t.Errorf("a message through a limiter of its own: %v, want acked", o)
	}
}
