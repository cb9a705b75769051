package sqsqueue_test

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
	"github.com/tenancykit/tenancy/message/sqsqueue"
)

// TestHandlerPanicFails: a handler that panics on one message fails that
// message: the worker deletes the others of the batch, delivers it again
// after WithRetryDelay and dead-letters it after WithMaxDeliveries, the
// panic logged. Before, the panic (in the message's goroutine) stopped
// the process before the batch's deletes and before the message was
// settled: every worker that received it stopped, and the worker never
// dead-lettered it.
func TestHandlerPanicFails(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	p := newPublisher(t, f, queueURL)
	var logs syncbuf.Buffer
	w := newWorker(t, f, clk, sqsqueue.WithMaxDeliveries(2), sqsqueue.WithRetryDelay(5*time.Second),
		sqsqueue.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	var rec messagetest.Recorder
	h := message.BoundQueue("acme", basic)(rec.Handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "poison" {
			panic("handler bug")
		}
		return nil
	}))
	poison := publish(t, p, context.Background(), "poison", nil)
	publish(t, p, context.Background(), "ok", nil)
	poll(t, w, h, 2)
	if got := f.count(queueURL); got != 1 {
		t.Fatalf("%d messages left in the queue, want the poison one", got)
	}
	clk.Add(5 * time.Second)
	poll(t, w, h, 1)
	if diff := cmp.Diff(map[string]string{poison: "max_deliveries after 2 from orders"}, deadLetters(f)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if got := f.count(queueURL); got != 0 {
		t.Errorf("%d messages left in the queue, want none", got)
	}
	if got := logs.String(); strings.Count(got, "handler bug") != 2 || !strings.Contains(got, poison) {
		t.Errorf("logs %s: want the two panics, with the message's ID", got)
	}
}
