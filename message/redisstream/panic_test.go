package redisstream_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/redisstream"
	"github.com/tenancykit/tenancy/tenant"
)

// TestHandlerPanicFails: a handler that panics on one message fails that
// message: the consumer goes on with the others, delivers it again after
// WithRetryDelay and dead-letters it after WithMaxDeliveries, the panic
// logged. Before, the panic stopped the consumer (with WithConcurrency,
// the process) with the entry unsettled, so the next consumer to claim it
// stopped too, and it was never dead-lettered: one message stopped the
// group for ever.
func TestHandlerPanicFails(t *testing.T) {
	for _, concurrency := range []int{1, 3} {
		t.Run("concurrency "+string(rune('0'+concurrency)), func(t *testing.T) {
			client, stream := newClient(t)
			p, err := redisstream.NewPublisher(client, stream)
			if err != nil {
				t.Fatal(err)
			}
			clk := messagetest.NewClock()
			var logs syncbuf.Buffer
			c := newConsumer(t, client, stream, "w1", redisstream.WithClock(clk.Now), redisstream.WithMaxDeliveries(2),
				redisstream.WithRetryDelay(time.Second), redisstream.WithConcurrency(concurrency),
				redisstream.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			var rec messagetest.Recorder
			h := message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))(rec.Handler(func(_ context.Context, m *message.Message) error {
				if string(m.Body) == "poison" {
					panic("handler bug")
				}
				return nil
			}))
			ok := publish(t, p, "ok", nil)
			poison := publish(t, p, "poison", nil)
			ok2 := publish(t, p, "ok2", nil)
			poll(t, c, h, 3)
			if diff := cmp.Diff(map[string]string{ok: "acme#1", poison: "acme#1", ok2: "acme#1"}, rec.Got()); diff != "" {
				t.Errorf("ran (-want +got):\n%s", diff)
			}
			if n := pending(t, client, stream); n != 1 {
				t.Errorf("%d pending, want the poison message", n)
			}
			clk.Add(time.Second)
			poll(t, c, h, 1)
			if diff := cmp.Diff(map[string]string{poison: "max_deliveries after 2"}, deadLetters(t, client, stream)); diff != "" {
				t.Errorf("dead letters (-want +got):\n%s", diff)
			}
			if n := pending(t, client, stream); n != 0 {
				t.Errorf("%d pending", n)
			}
			if got := logs.String(); strings.Count(got, "handler bug") != 2 || !strings.Contains(got, poison) {
				t.Errorf("logs %s: want the two panics, with the entry's ID", got)
			}
		})
	}
}
