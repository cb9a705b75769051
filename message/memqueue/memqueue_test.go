package memqueue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// byBody answers each message with the outcome its body names, and
// records the deliveries it saw.
type byBody struct {
	mu   sync.Mutex
	seen []string // body/deliveries
}

func (b *byBody) HandleMessage(_ context.Context, m *message.Message) error {
	b.mu.Lock()
	b.seen = append(b.seen, string(m.Body)+"/"+string(rune('0'+m.Deliveries)))
	b.mu.Unlock()
	if m.Attributes != nil {
		m.Attributes["changed"] = "by the handler"
	}
	switch {
	case strings.HasPrefix(string(m.Body), "defer"):
		if m.Deliveries == 1 {
			return message.Defer(time.Minute)
		}
	case strings.HasPrefix(string(m.Body), "reject"):
		return message.Reject("unreadable")
	case strings.HasPrefix(string(m.Body), "fail"):
		return errors.New("down")
	case strings.HasPrefix(string(m.Body), "panic"):
		panic("handler bug")
	}
	return nil
}

// TestQueueOutcomes: each outcome is acted on as a transport acts on it,
// on the queue's clock.
func TestQueueOutcomes(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
	q := memqueue.New("orders", memqueue.WithClock(clk.Now), memqueue.WithMaxDeliveries(3), memqueue.WithRetryDelay(time.Second))
	for _, body := range []string{"ok", "defer", "reject", "fail"} {
		q.Publish([]byte(body), map[string]string{"a": "b"}, memqueue.WithSenderID("AROA1:s"))
	}
	var h byBody
	ctx := context.Background()
	rounds := []struct {
		advance   time.Duration
		delivered int
	}{{0, 4}, {time.Second, 1}, {time.Second, 1}, {time.Minute, 1}, {time.Hour, 0}}
	for i, r := range rounds {
		clk.Add(r.advance)
		if n := q.Drain(ctx, &h); n != r.delivered {
			t.Fatalf("round %d: delivered %d, want %d", i, n, r.delivered)
		}
	}
	want := []string{"ok/1", "defer/1", "reject/1", "fail/1", "fail/2", "fail/3", "defer/2"}
	if diff := cmp.Diff(want, h.seen); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	var acked []string
	for _, m := range q.Acked() {
		acked = append(acked, string(m.Body))
		if m.Attributes["changed"] != "" || m.Source != "orders" || m.SenderID != "AROA1:s" {
			t.Errorf("acked message %+v", m)
		}
	}
	if diff := cmp.Diff([]string{"ok", "defer"}, acked); diff != "" {
		t.Errorf("acked (-want +got):\n%s", diff)
	}
	var dead []string
	for _, d := range q.DeadLetters() {
		dead = append(dead, string(d.Message.Body)+":"+d.Reason)
	}
	if diff := cmp.Diff([]string{"reject:handler:unreadable", "fail:max_deliveries"}, dead); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if q.Waiting() != 0 || q.InFlight() != 0 {
		t.Errorf("%d waiting, %d in flight", q.Waiting(), q.InFlight())
	}
}

// TestQueuePanicFails: a handler that panics fails its message, which is
// delivered again, and the panic goes on to the caller.
func TestQueuePanicFails(t *testing.T) {
	q := memqueue.New("orders")
	q.Publish([]byte("panic"), nil)
	func() {
		defer func() {
			if p := recover(); p != "handler bug" {
				t.Errorf("recovered %v", p)
			}
		}()
		q.HandleNext(context.Background(), &byBody{})
	}()
	if q.Waiting() != 1 || q.InFlight() != 0 {
		t.Errorf("%d waiting, %d in flight: want the message back", q.Waiting(), q.InFlight())
	}
}

// TestQueueOrder: a message deferred goes back in its place: messages are
// delivered in the order they were published.
func TestQueueOrder(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
	q := memqueue.New("orders", memqueue.WithClock(clk.Now))
	for _, b := range []string{"defer-1", "ok-2", "ok-3"} {
		q.Publish([]byte(b), nil)
	}
	q.HandleNext(context.Background(), &byBody{}) // defer-1, deferred a minute
	clk.Add(time.Minute)
	var got []string
	for q.HandleNext(context.Background(), message.HandlerFunc(func(_ context.Context, m *message.Message) error {
		got = append(got, string(m.Body))
		return nil
	})) {
	}
	if diff := cmp.Diff([]string{"defer-1", "ok-2", "ok-3"}, got); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}
