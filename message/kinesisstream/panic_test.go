package kinesisstream_test

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
	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// TestHandlerPanicFails: a handler that panics on one record fails that
// record: the consumer goes on with the others, delivers it again after
// WithRetryDelay and dead-letters it after WithMaxDeliveries, the panic
// logged. Before, the panic stopped the consumer with the record before
// the checkpoint, and the delivery count, kept in memory, started again
// at the next consumer: one record stopped every consumer of the shard,
// for ever.
func TestHandlerPanicFails(t *testing.T) {
	client, stream := shared(t, 1)
	clk := messagetest.NewClock()
	p := newPublisher(t, client, stream)
	var logs syncbuf.Buffer
	c := newConsumer(t, client, client, stream, &kinesisstream.MemoryCheckpoints{},
		kinesisstream.WithClock(clk.Now), kinesisstream.WithMaxDeliveries(2), kinesisstream.WithRetryDelay(time.Second),
		kinesisstream.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	var rec messagetest.Recorder
	h := acme(rec.Handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "poison" {
			panic("handler bug")
		}
		return nil
	}))
	poison := publish(t, p, "acme", "poison", nil)
	ok := publish(t, p, "acme", "ok", nil)
	poll(t, c, h, 2)
	clk.Add(time.Second)
	poll(t, c, h, 1)
	poll(t, c, h, 0)
	if diff := cmp.Diff(map[string]string{poison: "acme#2", ok: "acme#1"}, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{poison: "max_deliveries after 2"}, deadLetters(t, client, stream)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if got := logs.String(); strings.Count(got, "handler bug") != 2 || !strings.Contains(got, poison) {
		t.Errorf("logs %s: want the two panics, with the record's ID", got)
	}
}
