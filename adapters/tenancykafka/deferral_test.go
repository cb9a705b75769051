package tenancykafka_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message"
)

// TestDeferralKeepsKeyOrder: on one partition, a deferred record of acme
// steps aside for globex's records but holds acme's next record behind
// it; it comes back when due on the consumer's clock, not a millisecond
// before, and acme's next record follows it.
func TestDeferralKeepsKeyOrder(t *testing.T) {
	c := newCluster(t, 1, "orders", "orders.dead")
	clk := messagetest.NewClock()
	p := newOrdersProducer(t, c)
	ctx := context.Background()
	for _, b := range []string{"acme-1", "acme-2", "globex-1"} {
		publish(t, p, ctx, b, nil)
	}
	ev := newEvents()
	h := ev.handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "acme-1" && m.Deliveries == 1 {
			return message.Defer(time.Second)
		}
		return nil
	})
	run(t, newConsumer(t, c, "orders", tenancykafka.WithClock(clk.Now)), h)

	ev.expect(t, "acme-1#1", "globex-1#1")
	// A record handled after the clock moved shows the consumer looked
	// at what was due then.
	clk.Add(999 * time.Millisecond)
	publish(t, p, ctx, "globex-2", nil)
	ev.expect(t, "globex-2#1")
	clk.Add(time.Millisecond)
	ev.expect(t, "acme-1#2", "acme-2#1")
	ev.none(t)
}

// TestDeferredRecordOutlivesItsConsumer: a consumer that stops while a
// record is deferred commits the offset of that record, not past it,
// although it settled the records after it; the next member of the
// group delivers it and every record after it again, and commits all.
func TestDeferredRecordOutlivesItsConsumer(t *testing.T) {
	c := newCluster(t, 1, "orders", "orders.dead")
	clk := messagetest.NewClock()
	p := newOrdersProducer(t, c)
	ctx := context.Background()
	for _, b := range []string{"globex-1", "acme-1", "acme-2", "globex-2"} {
		publish(t, p, ctx, b, nil)
	}
	var deferred atomic.Bool
	ev := newEvents()
	h := ev.handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "acme-1" && deferred.CompareAndSwap(false, true) {
			return message.Defer(time.Hour)
		}
		return nil
	})
	stop := run(t, newConsumer(t, c, "orders", tenancykafka.WithClock(clk.Now)), h)
	ev.expect(t, "globex-1#1", "acme-1#1", "globex-2#1")
	stop()
	ev.none(t)
	if diff := cmp.Diff(map[int32]int64{0: 1}, committed(t, c, "orders")); diff != "" {
		t.Errorf("committed offsets with acme-1 deferred (-want +got):\n%s", diff)
	}

	stop = run(t, newConsumer(t, c, "orders", tenancykafka.WithClock(clk.Now)), h)
	ev.expect(t, "acme-1#1", "acme-2#1", "globex-2#1")
	stop()
	ev.none(t)
	if diff := cmp.Diff(map[int32]int64{0: 4}, committed(t, c, "orders")); diff != "" {
		t.Errorf("committed offsets at the end (-want +got):\n%s", diff)
	}
}

// TestBackpressure: with room for two unsettled records, a partition
// whose two records are deferred gets no further record until they
// settle.
func TestBackpressure(t *testing.T) {
	c := newCluster(t, 1, "orders", "orders.dead")
	clk := messagetest.NewClock()
	p := newOrdersProducer(t, c)
	ctx := context.Background()
	for _, b := range []string{"k1", "k2", "k3", "k4", "k5"} {
		publish(t, p, ctx, b, nil)
	}
	ev := newEvents()
	h := ev.handler(func(_ context.Context, m *message.Message) error {
		if m.Deliveries == 1 {
			return message.Defer(time.Second)
		}
		return nil
	})
	run(t, newConsumer(t, c, "orders", tenancykafka.WithClock(clk.Now), tenancykafka.WithMaxPending(2)), h)
	ev.expect(t, "k1#1", "k2#1")
	clk.Add(time.Second)
	ev.expect(t, "k1#2", "k2#2", "k3#1", "k4#1")
	clk.Add(time.Second)
	ev.expect(t, "k3#2", "k4#2", "k5#1")
	clk.Add(time.Second)
	ev.expect(t, "k5#2")
	ev.none(t)
}
