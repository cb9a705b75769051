package tenancy_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// TestWrapMessagesDefersOverBudget: a tenant over its rate has its
// messages deferred by the limiter's retry-after, never dropped nor
// dead-lettered, and each is handled once its budget allows it, while the
// other tenant goes on.
func TestWrapMessagesDefersOverBudget(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 1, Burst: 2})
	h := c.wrap(t, message.HandlerFunc(c.fulfil))
	a1, g1, a2, g2, a3, a4 := c.publish(t, "acme", "a1"), c.publish(t, "globex", "g1"), c.publish(t, "acme", "a2"),
		c.publish(t, "globex", "g2"), c.publish(t, "acme", "a3"), c.publish(t, "acme", "a4")
	ctx := context.Background()

	acked := func() []string {
		var ids []string
		for _, m := range c.queue.Acked() {
			ids = append(ids, m.ID)
		}
		return ids
	}
	steps := []struct {
		advance   time.Duration
		delivered int
		acked     []string
	}{
		{0, 6, []string{a1, g1, a2, g2}},                      // a3 and a4 over the burst
		{999 * time.Millisecond, 0, []string{a1, g1, a2, g2}}, // deferred by 1s: not back yet
		{time.Millisecond, 2, []string{a1, g1, a2, g2, a3}},   // one more unit: a3; a4 again
		{time.Second, 1, []string{a1, g1, a2, g2, a3, a4}},
	}
	for i, s := range steps {
		c.clk.Add(s.advance)
		if n := c.queue.Drain(ctx, h); n != s.delivered {
			t.Fatalf("step %d: delivered %d, want %d", i, n, s.delivered)
		}
		if diff := cmp.Diff(s.acked, acked()); diff != "" {
			t.Fatalf("step %d: acked (-want +got):\n%s", i, diff)
		}
	}
	if dead := c.queue.DeadLetters(); len(dead) != 0 || c.queue.Waiting() != 0 {
		t.Fatalf("dead letters %v, %d waiting: want none", dead, c.queue.Waiting())
	}

	var deferred int
	for _, l := range c.lines(t, "message") {
		if l["outcome"] != "deferred" {
			continue
		}
		deferred++
		if l["tenant_id"] != "acme" || l["rejected_by"] != "throttle" || l["reject_reason"] != "rate" || l["retry_after_ms"] != 1000.0 || l["level"] != "INFO" {
			t.Errorf("deferral line %v", l)
		}
	}
	if deferred != 3 {
		t.Errorf("%d deferral lines, want 3 (a3 once, a4 twice)", deferred)
	}
	usage := c.usageBy(t)
	for k, want := range map[string]float64{
		"acme messages":                        4,
		"globex messages":                      2,
		"acme messages.denied throttle:rate":   3,
		"acme orders.fulfilled":                4,
		"globex messages.denied throttle:rate": 0,
	} {
		if usage[k] != want {
			t.Errorf("usage %q = %v, want %v", k, usage[k], want)
		}
	}
}

// TestWrapMessagesInFlightCap: a tenant with every in-flight slot taken
// has its next message deferred, while another tenant's message runs; the
// deferred one runs once a slot is free.
func TestWrapMessagesInFlightCap(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 100, Burst: 100, MaxConcurrent: 2})
	entered := make(chan string, 2)
	release := make(chan struct{})
	h := c.wrap(t, message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		if tn, _ := tenant.FromContext(ctx); tn.ID == "acme" && string(m.Body) != "a3" {
			entered <- m.ID
			<-release
		}
		return c.fulfil(ctx, m)
	}))
	c.publish(t, "acme", "a1")
	c.publish(t, "acme", "a2")
	a3 := c.publish(t, "acme", "a3")
	g1 := c.publish(t, "globex", "g1")
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { c.queue.HandleNext(ctx, h) })
	}
	<-entered
	<-entered // acme's two slots are taken
	for _, id := range []string{a3, g1} {
		if !c.queue.HandleNext(ctx, h) {
			t.Fatalf("%s was not delivered", id)
		}
	}
	if got := ids(c.queue.Acked()); !cmp.Equal(got, []string{g1}) {
		t.Fatalf("acked %v while acme's slots were taken, want only %s (globex)", got, g1)
	}
	close(release)
	wg.Wait()
	c.clk.Add(time.Second)
	if n := c.queue.Drain(ctx, h); n != 1 {
		t.Fatalf("delivered %d after the slots were freed, want a3", n)
	}
	if len(c.queue.Acked()) != 4 || len(c.queue.DeadLetters()) != 0 {
		t.Fatalf("acked %v, dead %v: want all four, none dead", ids(c.queue.Acked()), c.queue.DeadLetters())
	}
	for _, l := range c.lines(t, "message") {
		if l["request_id"] == a3 && l["outcome"] == "deferred" && (l["reject_reason"] != "concurrency" || l["retry_after_ms"] != 1000.0) {
			t.Errorf("a3's deferral: %v", l)
		}
	}
	if usage := c.usageBy(t); usage["acme messages.denied throttle:concurrency"] != 1 || usage["acme messages"] != 3 {
		t.Errorf("usage %v: want one concurrency deferral and three acme messages", usage)
	}
}

// TestWrapMessagesClaimedTenantNeedsOptIn: a tenant only claimed by an
// attribute spends no budget unless the limiter takes claimed tenants:
// such a message is dead-lettered, as a request would be refused.
func TestWrapMessagesClaimedTenantNeedsOptIn(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []throttle.Option
		dead string
	}{
		{"verified only", nil, "throttle:tenant_required"},
		{"claimed tenants", []throttle.Option{throttle.WithClaimedTenants()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsumer(t, throttle.Limits{Rate: 10, Burst: 10}, tc.opts...)
			h := c.wrap(t, message.HandlerFunc(c.fulfil), message.UnverifiedAttribute("tenant"))
			c.queue.Publish([]byte("a"), map[string]string{"tenant": "acme"})
			c.queue.Drain(context.Background(), h)
			var dead string
			if d := c.queue.DeadLetters(); len(d) == 1 {
				dead = d[0].Reason
			}
			if dead != tc.dead || len(c.queue.Acked())+len(c.queue.DeadLetters()) != 1 {
				t.Errorf("dead-lettered with %q (acked %d), want %q", dead, len(c.queue.Acked()), tc.dead)
			}
		})
	}
}

// TestWrapMessagesCredentialsInnermost: credentials are fetched only for
// messages the trust mode and the throttle let through, with the tenant
// in the context.
func TestWrapMessagesCredentialsInnermost(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 1, Burst: 1})
	var asked []string
	creds := func(next message.Handler) message.Handler {
		return message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
			tn, _ := tenant.FromContext(ctx)
			asked = append(asked, tn.ID)
			return next.HandleMessage(ctx, m)
		})
	}
	s, err := tenancy.New(append(c.options(), tenancy.WithMessageCredentials(creds))...)
	if err != nil {
		t.Fatal(err)
	}
	h := s.WrapMessages(message.HandlerFunc(c.fulfil))
	c.publish(t, "acme", "a1")
	c.publish(t, "acme", "a2")                         // over the burst: deferred
	c.queue.Publish([]byte("a3"), map[string]string{}) // no stamp: refused
	c.queue.Drain(context.Background(), h)
	if !cmp.Equal(asked, []string{"acme"}) {
		t.Errorf("credentials asked for %v, want acme once", asked)
	}
}
