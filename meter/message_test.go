package meter_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

// TestMessageMiddlewareMeters: each message is metered for the tenant its
// trust mode established, a refused one as denied and unattributed, with
// the reason, and the handler's meter.Add reaches the same recorder.
func TestMessageMiddlewareMeters(t *testing.T) {
	clk := newClock(start)
	s := &sink{}
	rec := newRecorder(t, clk, s, meter.WithMeters(meter.MessageMeters()...), meter.WithMeters(meter.Meter{Name: "orders.fulfilled"}))
	h := meter.MessageMiddleware(rec)(message.UnverifiedAttribute("tenant")(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		clk.Advance(20 * time.Millisecond)
		meter.Add(ctx, "orders.fulfilled", 1)
		return message.Reject("the handler's own") // metered as a message all the same
	})))
	for _, m := range []*message.Message{
		{ID: "1", Source: "orders", Body: make([]byte, 100), Attributes: map[string]string{"tenant": "acme"}},
		{ID: "2", Source: "orders", Body: make([]byte, 50), Attributes: map[string]string{"tenant": "acme"}},
		{ID: "3", Source: "orders", Body: make([]byte, 7)},
	} {
		h.HandleMessage(context.Background(), m)
	}
	if err := rec.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"acme|messages|source=orders":          2,
		"acme|messages.bytes|source=orders":    150,
		"acme|messages.duration|source=orders": 40,
		"acme|orders.fulfilled":                2,
		"(unattributed)|messages.denied|reason=unverified_attribute:tenant_missing|source=orders": 1,
		"(unattributed)|messages.bytes|source=orders":                                             7,
	}
	if diff := cmp.Diff(want, totals(s.Records())); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

func TestMessageMetersFreshCopy(t *testing.T) {
	a := meter.MessageMeters()
	a[0].Name = "changed"
	if meter.MessageMeters()[0].Name != meter.MeterMessages {
		t.Error("MessageMeters shares its slice")
	}
}

// TestMessageMiddlewareReadsClockTwice: the middleware reads the clock
// when a message starts and once when it ends, for the duration and the
// window of every meter of the message alike.
func TestMessageMiddlewareReadsClockTwice(t *testing.T) {
	clk := newClock(start)
	var reads int
	counting := func() time.Time { reads++; return clk.Now() }
	rec := newRecorder(t, clk, &sink{}, meter.WithMeters(meter.MessageMeters()...), meter.WithClock(counting))
	h := meter.MessageMiddleware(rec)(message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("premium"))(message.HandlerFunc(func(context.Context, *message.Message) error {
		return nil
	})))
	before := reads
	h.HandleMessage(context.Background(), &message.Message{ID: "1", Source: "orders", Body: []byte("{}")})
	if n := reads - before; n != 2 {
		t.Errorf("one message read the clock %d times, want 2", n)
	}
}
