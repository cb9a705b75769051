package tenancy_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/throttle"
)

// TestWrapMessagesFairShare runs a shared queue's backlog through the
// stack with a fair share of one worker and six places to wait: acme's 30
// messages are queued before globex's 3, and eight goroutines hand
// messages over at once, as a consumer with concurrency does. Globex's messages take their turns
// among acme's instead of waiting for acme's backlog, and what the fair
// share defers is logged and metered as a deferral of the throttle, never
// dead-lettered.
func TestWrapMessagesFairShare(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 1000, Burst: 1000})
	fair, err := throttle.NewFairShare(1, throttle.WithWaiting(6))
	if err != nil {
		t.Fatal(err)
	}
	s, err := tenancy.New(append(c.options(), tenancy.WithMessageFairShare(fair))...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		c.publish(t, "acme", fmt.Sprintf("a%d", i))
	}
	for i := range 3 {
		c.publish(t, "globex", fmt.Sprintf("g%d", i))
	}

	// The handler holds its worker until the test lets it go, so that
	// the other goroutines' messages find it busy.
	var (
		mu    sync.Mutex
		order []string
	)
	started := make(chan struct{})
	proceed := make(chan struct{})
	h := s.WrapMessages(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		started <- struct{}{}
		<-proceed
		mu.Lock()
		order = append(order, string(m.Body))
		mu.Unlock()
		return c.fulfil(ctx, m)
	}))
	// run hands the queue's visible messages to h from n goroutines. Once
	// every goroutine but the one running a message waits for the worker
	// or has found nothing more to read, it lets that message finish.
	run := func(n int) {
		var live atomic.Int32
		live.Store(int32(n))
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer live.Add(-1)
				for c.queue.HandleNext(context.Background(), h) {
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-started:
				for int(live.Load()) != fair.Waiting()+1 {
					runtime.Gosched()
				}
				proceed <- struct{}{}
			case <-done:
				return
			}
		}
	}
	run(8)

	// Globex's three were all handled, each before acme's backlog was.
	pos := map[string]int{}
	for i, body := range order {
		pos[body] = i
	}
	for i := range 3 {
		g := fmt.Sprintf("g%d", i)
		p, ok := pos[g]
		if !ok {
			t.Fatalf("%s was not handled: order %v, dead letters %v", g, order, c.queue.DeadLetters())
		}
		if p > 2*(i+1) {
			t.Errorf("%s handled %d-th of %d: it waited behind acme's backlog (%v)", g, p+1, len(order), order)
		}
	}
	if dl := c.queue.DeadLetters(); len(dl) != 0 {
		t.Fatalf("dead letters %v: a fair-share deferral is never dead-lettered", dl)
	}
	// The rest of acme's backlog comes back once its deferral is due.
	deferred := 33 - len(order)
	if deferred != c.queue.Waiting() {
		t.Errorf("%d handled, %d waiting: a message was lost", len(order), c.queue.Waiting())
	}
	if deferred == 0 {
		t.Fatal("nothing was deferred: the four goroutines never found the worker busy")
	}
	lines := c.lines(t, "message")
	n := 0
	for _, l := range lines {
		if l["outcome"] == "deferred" {
			if l["rejected_by"] != "throttle" || l["reject_reason"] != "fair_share" {
				t.Errorf("deferral line %v", l)
			}
			n++
		}
	}
	if n != deferred {
		t.Errorf("%d deferral lines, %d messages deferred", n, deferred)
	}
	c.clk.Add(throttle.MaxFairDeferral)
	run(1)
	if len(order) != 33 {
		t.Fatalf("%d of 33 handled once the deferrals were due", len(order))
	}
	usage := c.usageBy(t)
	if usage["acme orders.fulfilled"] != 30 || usage["globex orders.fulfilled"] != 3 {
		t.Errorf("usage %v, %d handled", usage, len(order))
	}
	if usage["acme messages.denied throttle:fair_share"] != float64(deferred) {
		t.Errorf("usage %v: want %d acme deferrals metered", usage, deferred)
	}
}
