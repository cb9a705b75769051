package throttle

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// fairRig runs messages through a FairShare whose handler blocks until the
// test releases it, so that the test decides when a worker is free and
// sees which tenant's message takes it.
type fairRig struct {
	t       *testing.T
	f       *FairShare
	h       message.Handler
	started chan string    // the tenant of each message the handler starts
	release chan struct{}  // one message the handler runs returns per send
	results chan fairEnd   // each message's end
	wg      sync.WaitGroup // the messages sent
}

type fairEnd struct {
	tenant string
	err    error
}

func newFairRig(t *testing.T, workers int, opts ...FairOption) *fairRig {
	t.Helper()
	f, err := NewFairShare(workers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	r := &fairRig{t: t, f: f, started: make(chan string, 1000), release: make(chan struct{}), results: make(chan fairEnd, 1000)}
	inner := message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		r.started <- m.Attributes["tenant"]
		<-r.release
		return nil
	})
	tiers := message.WithTiers(tenant.DefaultTiers)
	r.h = message.UnverifiedAttribute("tenant", tiers, message.WithTierAttribute("tier"))(f.MessageMiddleware()(inner))
	return r
}

// send hands a message of tenant id (of tier) to the handler in a
// goroutine of its own, as a transport with many deliveries at once does.
func (r *fairRig) send(ctx context.Context, id, tier string, deliveries int) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		m := &message.Message{ID: id, Attributes: map[string]string{"tenant": id, "tier": tier}, Deliveries: deliveries}
		r.results <- fairEnd{id, r.h.HandleMessage(ctx, m)}
	}()
}

// waitFor blocks until n messages wait for a worker.
func (r *fairRig) waitFor(n int) {
	r.t.Helper()
	for {
		r.f.mu.Lock()
		w := r.f.waiting
		r.f.mu.Unlock()
		if w == n {
			return
		}
		if w > n {
			r.t.Fatalf("%d messages wait, want %d", w, n)
		}
		if len(r.results) > 0 {
			r.t.Fatalf("%d messages wait, want %d, and a message returned: %+v", w, n, <-r.results)
		}
		runtime.Gosched()
	}
}

// next releases one running message and returns the tenant of the one
// that took its worker.
func (r *fairRig) next() string {
	r.release <- struct{}{}
	return <-r.started
}

// deferred receives the end of a message that returned at once, and
// checks it was deferred for fair_share.
func (r *fairRig) deferred() fairEnd {
	r.t.Helper()
	end := <-r.results
	if o, _, _ := message.OutcomeOf(end.err); o != message.Deferred {
		r.t.Fatalf("message of %s: %v, want deferred", end.tenant, end.err)
	}
	return end
}

// finish releases every message still running or waiting.
func (r *fairRig) finish() {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case r.release <- struct{}{}:
		case <-r.started:
		}
	}
}

func TestFairShareTakesTurns(t *testing.T) {
	r := newFairRig(t, 1, WithWaiting(100))
	ctx := context.Background()
	r.send(ctx, "acme", "basic", 1)
	if got := <-r.started; got != "acme" {
		t.Fatalf("first message: %s", got)
	}
	for i := range 5 {
		r.send(ctx, "acme", "basic", 1)
		r.waitFor(i + 1)
	}
	for i := range 3 {
		r.send(ctx, "globex", "basic", 1)
		r.waitFor(6 + i)
	}
	var order []string
	for range 8 {
		order = append(order, r.next())
	}
	want := []string{"acme", "globex", "acme", "globex", "acme", "globex", "acme", "acme"}
	if !slices.Equal(order, want) {
		t.Fatalf("turns %v, want %v: a tenant queued behind another's backlog waits only for its turn", order, want)
	}
	r.finish()
}

func TestFairShareTierWeights(t *testing.T) {
	r := newFairRig(t, 1, WithWaiting(100), WithTierWeights(map[string]int{"premium": 3}))
	ctx := context.Background()
	r.send(ctx, "acme", "basic", 1)
	<-r.started
	for i := range 4 {
		r.send(ctx, "acme", "basic", 1)
		r.waitFor(i + 1)
	}
	for i := range 6 {
		r.send(ctx, "initech", "premium", 1)
		r.waitFor(5 + i)
	}
	var order []string
	for range 10 {
		order = append(order, r.next())
	}
	want := []string{"acme", "initech", "initech", "initech", "acme", "initech", "initech", "initech", "acme", "acme"}
	if !slices.Equal(order, want) {
		t.Fatalf("turns %v, want %v", order, want)
	}
	r.finish()
}

func TestFairShareGivesWay(t *testing.T) {
	r := newFairRig(t, 1, WithWaiting(4))
	ctx := context.Background()
	r.send(ctx, "acme", "basic", 1)
	<-r.started
	for i := range 4 {
		r.send(ctx, "acme", "basic", 1)
		r.waitFor(i + 1)
	}
	// The bound is reached: acme's next message is deferred at once.
	r.send(ctx, "acme", "basic", 1)
	if end := r.deferred(); end.tenant != "acme" {
		t.Fatalf("deferred %s, want acme", end.tenant)
	}
	// globex's first two take the places of acme's newest; its third
	// would make it the longest line, and is deferred.
	for range 2 {
		r.send(ctx, "globex", "basic", 1)
		if end := r.deferred(); end.tenant != "acme" {
			t.Fatalf("gave way: %s, want acme", end.tenant)
		}
	}
	r.waitFor(4)
	r.send(ctx, "globex", "basic", 1)
	if end := r.deferred(); end.tenant != "globex" {
		t.Fatalf("deferred %s, want globex", end.tenant)
	}
	var order []string
	for range 4 {
		order = append(order, r.next())
	}
	if want := []string{"acme", "globex", "acme", "globex"}; !slices.Equal(order, want) {
		t.Fatalf("turns %v, want %v", order, want)
	}
	r.finish()
}

func TestFairShareDeferral(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := newFairRig(t, 2, WithWaiting(2), WithFairClock(clock))
	ctx := context.Background()
	// Before any measurement, DefaultFairService: one share of it is
	// 1 ms × 1 line / 2 workers.
	if d := r.f.deferral("initech"); d != DefaultFairService/2 {
		t.Fatalf("deferral before a measurement: %v", d)
	}
	// Two messages of 40 ms each: the average is 40 ms.
	for range 2 {
		r.send(ctx, "acme", "basic", 1)
		<-r.started
	}
	advance(40 * time.Millisecond)
	r.release <- struct{}{}
	r.release <- struct{}{}
	for range 2 {
		if end := <-r.results; end.err != nil {
			t.Fatal(end.err)
		}
	}
	// Both workers busy and both places taken by acme: its next messages
	// are deferred one share (40 ms × 1 line / 2 workers) apart, the
	// first after its line of two drains.
	for range 2 {
		r.send(ctx, "acme", "basic", 1)
		<-r.started
	}
	for i := range 2 {
		r.send(ctx, "acme", "basic", 1)
		r.waitFor(i + 1)
	}
	for _, want := range []time.Duration{60 * time.Millisecond, 80 * time.Millisecond, 100 * time.Millisecond} {
		r.send(ctx, "acme", "basic", 40)
		_, after, _ := message.OutcomeOf(r.deferred().err)
		if after != want {
			t.Errorf("deferral %v, want %v", after, want)
		}
	}
	// Once those are due, the spacing starts again from now.
	advance(time.Second)
	r.send(ctx, "acme", "basic", 1)
	if _, after, _ := message.OutcomeOf(r.deferred().err); after != 60*time.Millisecond {
		t.Errorf("deferral after the others were due: %v", after)
	}
	// However long the backlog, MaxFairDeferral bounds the wait.
	for range 50_000 {
		r.f.deferral("acme")
	}
	if d := r.f.deferral("acme"); d != MaxFairDeferral {
		t.Errorf("deferral of a long backlog: %v", d)
	}
	r.finish()
}

func TestFairShareWaiterLeaves(t *testing.T) {
	r := newFairRig(t, 1)
	r.send(context.Background(), "acme", "basic", 1)
	<-r.started
	ctx, cancel := context.WithCancel(context.Background())
	r.send(ctx, "globex", "basic", 1)
	r.waitFor(1)
	cancel()
	if end := r.deferred(); end.tenant != "globex" {
		t.Fatalf("deferred %s", end.tenant)
	}
	r.waitFor(0)
	// The worker is still there for the next message.
	r.release <- struct{}{}
	if end := <-r.results; end.err != nil {
		t.Fatal(end.err)
	}
	r.send(context.Background(), "initech", "basic", 1)
	if got := <-r.started; got != "initech" {
		t.Fatalf("started %s", got)
	}
	r.finish()
}

func TestNewFairShareRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		workers int
		opts    []FairOption
	}{
		"no workers":      {0, nil},
		"negative bound":  {1, []FairOption{WithWaiting(-1)}},
		"weight of zero":  {1, []FairOption{WithTierWeights(map[string]int{"basic": 0})}},
		"negative worker": {-2, nil},
	} {
		if _, err := NewFairShare(c.workers, c.opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewFairShare(1, nil, WithFairClock(nil)); err != nil {
		t.Errorf("nil options: %v", err)
	}
}

// TestFairShareForgetsDueTimes: the due time of each tenant's last
// deferral is kept only while it may push the next one back; a consumer
// that sees many tenants come and go does not keep one per tenant for
// ever.
func TestFairShareForgetsDueTimes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	f, err := NewFairShare(1, WithFairClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	bound := 4*f.maxWaiting + 1024
	for i := range bound {
		f.deferral(fmt.Sprintf("t%d", i))
	}
	if len(f.due) != bound {
		t.Fatalf("%d due times kept, want %d", len(f.due), bound)
	}
	now = now.Add(MaxFairDeferral) // every one of them is due
	f.deferral("late")
	if len(f.due) != 1 {
		t.Fatalf("%d due times kept once all were due, want only the new one", len(f.due))
	}
}
