package awscreds_test

import (
	"context"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/authz/awscreds"
	"github.com/tenancykit/tenancy/authz/awscreds/ststest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// TestMessageMiddleware: a message's tenant has its credentials before
// the handler runs; while STS fails for a tenant, its messages are
// deferred, never dead-lettered, and a claimed tenant is refused.
func TestMessageMiddleware(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	ran := 0
	h := awscreds.MessageMiddleware(p)(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		if _, err := p.Retrieve(ctx); err != nil {
			t.Errorf("the handler's credentials: %v", err)
		}
		ran++
		return nil
	}))
	deliver := func(mode message.Middleware) (message.Outcome, time.Duration, string) {
		return message.OutcomeOf(mode(h).HandleMessage(context.Background(), &message.Message{ID: "1", Attributes: map[string]string{"tenant": "acme"}}))
	}
	if o, _, _ := deliver(message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))); o != message.Acked || ran != 1 {
		t.Fatalf("acme: %v, ran %d; want acked", o, ran)
	}
	srv.Fail("globex", "RegionDisabledException")
	if o, after, _ := deliver(message.BoundQueue("globex", tenant.DefaultTiers.MustLookup("basic"))); o != message.Deferred || after != 5*time.Second || ran != 1 {
		t.Errorf("globex with STS failing: %v for %v, ran %d; want deferred by 5s", o, after, ran)
	}
	if o, _, reason := deliver(message.UnverifiedAttribute("tenant")); o != message.Rejected || reason != "awscreds:tenant_required" || ran != 1 {
		t.Errorf("a claimed tenant: %v %q, ran %d; want rejected awscreds:tenant_required", o, reason, ran)
	}
}
