package tenancykafka_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/message"
)

// TestHandlerPanicFails: a handler that panics on one record fails that
// record: the consumer goes on with the others, delivers it again after
// WithRetryDelay and dead-letters it after WithMaxDeliveries, the panic
// logged. Before, the panic (in a partition's goroutine) stopped the
// process with the offset uncommitted, and the delivery count, kept in
// memory, started again at the next consumer: one record stopped every
// consumer of its partition, for ever.
func TestHandlerPanicFails(t *testing.T) {
	c := newCluster(t, 1, "orders", "orders.dead")
	clk := messagetest.NewClock()
	p := newOrdersProducer(t, c)
	ctx := context.Background()
	poison := publish(t, p, ctx, "poison", nil)
	publish(t, p, ctx, "ok", nil)
	ev := newEvents()
	h := ev.handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "poison" {
			panic("handler bug")
		}
		return nil
	})
	var logs syncbuf.Buffer
	con := newConsumer(t, c, "orders", tenancykafka.WithClock(clk.Now),
		tenancykafka.WithMaxDeliveries(2), tenancykafka.WithRetryDelay(time.Second),
		tenancykafka.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	stop := run(t, con, h)
	ev.expect(t, "poison#1", "ok#1")
	clk.Add(time.Second)
	ev.expect(t, "poison#2")
	dead := readDeadLetters(t, c, "orders.dead", 1)
	stop()
	ev.none(t)
	if diff := cmp.Diff(map[string]string{poison: "poison poison max_deliveries 2 map[]"}, summarize(dead)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[int32]int64{0: 2}, committed(t, c, "orders")); diff != "" {
		t.Errorf("committed offsets (-want +got):\n%s", diff)
	}
	if got := logs.String(); strings.Count(got, "handler bug") != 2 || !strings.Contains(got, poison) {
		t.Errorf("logs %s: want the two panics, with the record's ID", got)
	}
}
