package redisstream_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/redisstream"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
	"go.uber.org/goleak"
)

// The Redis server the tests share; each test has streams of its own.
var (
	redisServer *testservers.RedisServer
	redisErr    error
)

func TestMain(m *testing.M) {
	var stop func()
	redisServer, stop, redisErr = testservers.StartRedis()
	goleak.VerifyTestMain(testservers.AfterRun(m, stop))
}

// newClient returns a client of the shared server, closed at the end of
// the test, and a stream name of the test's own.
func newClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	testservers.Check(t, redisErr)
	c := redis.NewClient(&redis.Options{Addr: redisServer.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	// A run of its own too: -count runs a test again on the same server.
	return c, "orders:" + strings.ReplaceAll(t.Name(), "/", ":") + ":" + rand.Text()[:8]
}

func publish(t *testing.T, p *redisstream.Publisher, body string, attrs map[string]string) string {
	t.Helper()
	id, err := p.Publish(context.Background(), []byte(body), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newConsumer(t *testing.T, client *redis.Client, stream, name string, opts ...redisstream.Option) *redisstream.Consumer {
	t.Helper()
	c, err := redisstream.NewConsumer(context.Background(), client, stream, "fulfillment", name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func poll(t *testing.T, c *redisstream.Consumer, h message.Handler, want int) {
	t.Helper()
	n, err := c.Poll(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("Poll handled %d messages, want %d", n, want)
	}
}

// deadLetters returns the reasons of the dead-letter stream's entries, by
// the ID the message had.
func deadLetters(t *testing.T, client *redis.Client, stream string) map[string]string {
	t.Helper()
	entries, err := client.XRange(context.Background(), stream+":dead", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		out[e.Values["id"].(string)] = e.Values["reason"].(string) + " after " + e.Values["deliveries"].(string)
	}
	return out
}

func pending(t *testing.T, client *redis.Client, stream string) int64 {
	t.Helper()
	p, err := client.XPending(context.Background(), stream, "fulfillment").Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

// TestEndToEnd: stamped messages published to a stream are consumed
// through the whole stack: acknowledged, a tenant over its budget
// deferred and delivered again when its budget allows, forged and
// tampered stamps dead-lettered with their reasons.
func TestEndToEnd(t *testing.T) {
	client, stream := newClient(t)
	clk := messagetest.NewClock()
	s := messagetest.NewSigner(t, clk.Now)
	v := messagetest.NewVerifier(t, s, clk.Now)
	limiter, err := throttle.New(tenant.DefaultTiers, map[string]throttle.Limits{
		"basic": {Rate: 1, Burst: 2}, "standard": {Rate: 1, Burst: 2}, "premium": {Rate: 1, Burst: 2}, "platinum": {Rate: 1, Burst: 2},
	}, throttle.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	stack, err := tenancy.New(
		tenancy.WithAccessLog(slog.New(logging.NewHandler(logging.NewJSONHandler(logs, nil)))),
		tenancy.WithThrottle(limiter),
		tenancy.WithMessageTrust(stamp.Trusted(v)),
	)
	if err != nil {
		t.Fatal(err)
	}
	var rec messagetest.Recorder
	h := stack.WrapMessages(rec.Handler(nil))

	p, err := redisstream.NewPublisher(client, stream)
	if err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, client, stream, "w1", redisstream.WithClock(clk.Now))
	a1 := publish(t, p, "a1", messagetest.Stamp(t, s, "acme", "a1"))
	a2 := publish(t, p, "a2", messagetest.Stamp(t, s, "acme", "a2"))
	a3 := publish(t, p, "a3", messagetest.Stamp(t, s, "acme", "a3"))
	g1 := publish(t, p, "g1", messagetest.Stamp(t, s, "globex", "g1"))
	forged := publish(t, p, "f1", messagetest.Stamp(t, messagetest.NewSigner(t, clk.Now), "acme", "f1"))
	tampered := publish(t, p, "t1-changed", messagetest.Stamp(t, s, "acme", "t1"))

	poll(t, c, h, 6)
	if diff := cmp.Diff(map[string]string{a1: "acme#1", a2: "acme#1", g1: "globex#1"}, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{forged: "stamp:signature after 1", tampered: "stamp:body_digest after 1"}, deadLetters(t, client, stream)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if n := pending(t, client, stream); n != 1 {
		t.Errorf("%d entries pending, want a3", n)
	}

	poll(t, c, h, 0) // a3 is not due yet
	clk.Add(999 * time.Millisecond)
	poll(t, c, h, 0)
	clk.Add(time.Millisecond)
	poll(t, c, h, 1)
	if got := rec.Got()[a3]; got != "acme#2" {
		t.Errorf("a3 ran as %q, want acme on its second delivery", got)
	}
	if n := pending(t, client, stream); n != 0 {
		t.Errorf("%d entries pending, want none", n)
	}
	if !strings.Contains(logs.String(), `"request_id":"`+a3+`","trace_id"`) || !strings.Contains(logs.String(), `"outcome":"deferred"`) {
		t.Errorf("no log line of a3's deferral in:\n%s", logs)
	}
}

// TestFailuresThenDeadLetter: a failing message is delivered again after
// the retry delay until its maximum of deliveries, then dead-lettered.
func TestFailuresThenDeadLetter(t *testing.T) {
	client, stream := newClient(t)
	clk := messagetest.NewClock()
	p, _ := redisstream.NewPublisher(client, stream)
	c := newConsumer(t, client, stream, "w1", redisstream.WithClock(clk.Now), redisstream.WithMaxDeliveries(3), redisstream.WithRetryDelay(time.Second))
	var rec messagetest.Recorder
	h := message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))(rec.Handler(func(context.Context, *message.Message) error {
		return errors.New("database down")
	}))
	id := publish(t, p, "a", map[string]string{"k": "v"})
	for i := range 3 {
		poll(t, c, h, 1)
		if got := rec.Got()[id]; got != "acme#"+string(rune('1'+i)) {
			t.Fatalf("delivery %d: %q", i+1, got)
		}
		poll(t, c, h, 0)
		clk.Add(time.Second)
	}
	if diff := cmp.Diff(map[string]string{id: "max_deliveries after 3"}, deadLetters(t, client, stream)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	entries, _ := client.XRange(context.Background(), stream+":dead", "-", "+").Result()
	if len(entries) != 1 || entries[0].Values["body"] != "a" || entries[0].Values["attr:k"] != "v" || entries[0].Values["source"] != stream {
		t.Errorf("dead letter %v: want the message's body, attributes and source", entries)
	}
	if n := pending(t, client, stream); n != 0 {
		t.Errorf("%d pending", n)
	}
}

// TestAbandonedEntriesClaimed: an entry a consumer read and never settled
// is claimed by another once idle for WithClaimAfter and delivered again;
// an entry deferred to later is left for its due time.
func TestAbandonedEntriesClaimed(t *testing.T) {
	client, stream := newClient(t)
	ctx := context.Background()
	clk := messagetest.NewClock()
	p, _ := redisstream.NewPublisher(client, stream)
	var rec messagetest.Recorder
	h := message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))(rec.Handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "later" && m.Deliveries == 1 {
			return message.Defer(time.Hour)
		}
		return nil
	}))
	w1 := newConsumer(t, client, stream, "w1", redisstream.WithClock(clk.Now))
	later := publish(t, p, "later", nil)
	poll(t, w1, h, 1) // deferred an hour
	lost := publish(t, p, "lost", nil)
	// A consumer reads it and stops before settling it.
	if err := client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "fulfillment", Consumer: "crashed", Streams: []string{stream, ">"}, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	// Both have been idle for two minutes, as Redis counts (JUSTID: no
	// delivery counted).
	for id, owner := range map[string]string{later: "w1", lost: "crashed"} {
		if err := client.Do(ctx, "XCLAIM", stream, "fulfillment", owner, 0, id, "IDLE", 120_000, "JUSTID").Err(); err != nil {
			t.Fatal(err)
		}
	}
	w2 := newConsumer(t, client, stream, "w2", redisstream.WithClock(clk.Now))
	poll(t, w2, h, 1)
	if got := rec.Got()[lost]; got != "acme#2" {
		t.Errorf("the abandoned entry ran as %q, want acme on its second delivery", got)
	}
	poll(t, w2, h, 0)
	clk.Add(time.Hour)
	poll(t, w2, h, 1)
	if got := rec.Got()[later]; got != "acme#2" {
		t.Errorf("the deferred entry ran as %q, want acme on its second delivery", got)
	}
	if n := pending(t, client, stream); n != 0 {
		t.Errorf("%d pending", n)
	}
}

// TestRun: Run delivers what is published while it runs and returns once
// its context is done.
func TestRun(t *testing.T) {
	client, stream := newClient(t)
	p, _ := redisstream.NewPublisher(client, stream, redisstream.WithMaxLen(1000))
	c := newConsumer(t, client, stream, "w1", redisstream.WithBlock(20*time.Millisecond))
	got := make(chan string, 3)
	h := message.HandlerFunc(func(_ context.Context, m *message.Message) error {
		got <- string(m.Body) + " " + m.Attributes["k"]
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	for _, b := range []string{"1", "2", "3"} {
		publish(t, p, b, map[string]string{"k": "v" + b})
	}
	var bodies []string
	for range 3 {
		bodies = append(bodies, <-got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once cancelled", err)
	}
	if diff := cmp.Diff([]string{"1 v1", "2 v2", "3 v3"}, bodies); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestConfigurationMistakes(t *testing.T) {
	client, stream := newClient(t)
	if _, err := redisstream.NewConsumer(context.Background(), client, stream, "", "w1"); err == nil {
		t.Error("NewConsumer without a group: no error")
	}
	if _, err := redisstream.NewConsumer(context.Background(), client, stream, "g", "w1", redisstream.WithMaxLen(10)); err == nil {
		t.Error("NewConsumer WithMaxLen: no error")
	}
	if _, err := redisstream.NewConsumer(context.Background(), client, stream, "g", "w1", redisstream.WithConcurrency(-1)); err == nil || !strings.Contains(err.Error(), "WithConcurrency") {
		t.Errorf("NewConsumer WithConcurrency(-1): %v, want an error naming the option", err)
	}
	if _, err := redisstream.NewPublisher(client, stream, redisstream.WithMaxLen(-1)); err == nil {
		t.Error("NewPublisher WithMaxLen(-1): no error")
	}
}

// blocker is a handler that holds each message until the test releases
// one, and counts how many it holds at once.
type blocker struct {
	started chan string   // the body of each message as its handler starts
	release chan struct{} // one message returns per send
	mu      sync.Mutex
	now     int // messages held
	most    int // the most held at once
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), release: make(chan struct{})}
}

func (b *blocker) HandleMessage(_ context.Context, m *message.Message) error {
	b.mu.Lock()
	b.now++
	b.most = max(b.most, b.now)
	b.mu.Unlock()
	b.started <- string(m.Body)
	<-b.release
	b.mu.Lock()
	b.now--
	b.mu.Unlock()
	return nil
}

func (b *blocker) mostAtOnce() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.most
}

// TestConcurrency: with WithConcurrency(4), Run hands four entries to
// the handler at once, and never a fifth before one returns; each is
// acknowledged as its handler returns, whatever the order.
func TestConcurrency(t *testing.T) {
	client, stream := newClient(t)
	p, _ := redisstream.NewPublisher(client, stream)
	for i := range 10 {
		publish(t, p, string(rune('a'+i)), nil)
	}
	c := newConsumer(t, client, stream, "w1", redisstream.WithConcurrency(4), redisstream.WithBlock(20*time.Millisecond))
	b := newBlocker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, b) }()

	seen := map[string]bool{}
	for range 4 { // four at once: none has returned yet
		seen[<-b.started] = true
	}
	for range 6 { // each return lets one more start
		b.release <- struct{}{}
		seen[<-b.started] = true
	}
	for range 4 {
		b.release <- struct{}{}
	}
	if len(seen) != 10 {
		t.Errorf("%d distinct messages started, want 10: %v", len(seen), seen)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once cancelled", err)
	}
	if n := b.mostAtOnce(); n != 4 {
		t.Errorf("at most %d messages handled at once, want 4", n)
	}
	if n := pending(t, client, stream); n != 0 {
		t.Errorf("%d entries pending after Run returned, want every one acknowledged", n)
	}
}

// TestConcurrencyStopMidStream: Run stopped while four entries are in
// hand waits for their handlers and settles them before it returns, and
// reads no more: the entries it never read are there for the next
// consumer, none lost and none left pending.
func TestConcurrencyStopMidStream(t *testing.T) {
	client, stream := newClient(t)
	p, _ := redisstream.NewPublisher(client, stream)
	for i := range 10 {
		publish(t, p, string(rune('a'+i)), nil)
	}
	c := newConsumer(t, client, stream, "w1", redisstream.WithConcurrency(4), redisstream.WithBlock(20*time.Millisecond))
	b := newBlocker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, b) }()
	for range 4 {
		<-b.started
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while four handlers were running", err)
	default:
	}
	for range 4 {
		b.release <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once cancelled", err)
	}
	if n := pending(t, client, stream); n != 0 {
		t.Errorf("%d entries pending, want the four handled acknowledged", n)
	}
	var seen messagetest.Seen
	next := newConsumer(t, client, stream, "w2")
	poll(t, next, message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))(seen.Handler()), 6)
	if n := seen.Count(); n != 6 {
		t.Errorf("the next consumer ran %d messages, want the 6 never read", n)
	}
}

// TestConcurrencyOutcomes: with WithConcurrency, each outcome is acted on
// as without: stamped messages verified and run as their tenant, refused
// stamps and rejected messages dead-lettered with their reasons, a
// deferred and a failing message delivered again when due, the failing
// one dead-lettered after its maximum of deliveries.
func TestConcurrencyOutcomes(t *testing.T) {
	client, stream := newClient(t)
	clk := messagetest.NewClock()
	s := messagetest.NewSigner(t, clk.Now)
	v := messagetest.NewVerifier(t, s, clk.Now)
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(v)))
	if err != nil {
		t.Fatal(err)
	}
	var rec messagetest.Recorder
	h := stack.WrapMessages(rec.Handler(func(_ context.Context, m *message.Message) error {
		switch string(m.Body) {
		case "later":
			if m.Deliveries == 1 {
				return message.Defer(time.Second)
			}
		case "broken":
			return errors.New("database down")
		case "unreadable":
			return message.Reject("invalid_order")
		}
		return nil
	}))
	p, _ := redisstream.NewPublisher(client, stream)
	c := newConsumer(t, client, stream, "w1", redisstream.WithClock(clk.Now), redisstream.WithConcurrency(3),
		redisstream.WithMaxDeliveries(2), redisstream.WithRetryDelay(time.Second))
	ok1 := publish(t, p, "ok1", messagetest.Stamp(t, s, "acme", "ok1"))
	ok2 := publish(t, p, "ok2", messagetest.Stamp(t, s, "globex", "ok2"))
	later := publish(t, p, "later", messagetest.Stamp(t, s, "acme", "later"))
	broken := publish(t, p, "broken", messagetest.Stamp(t, s, "globex", "broken"))
	unreadable := publish(t, p, "unreadable", messagetest.Stamp(t, s, "acme", "unreadable"))
	forged := publish(t, p, "f1", messagetest.Stamp(t, messagetest.NewSigner(t, clk.Now), "acme", "f1"))
	tampered := publish(t, p, "t1-changed", messagetest.Stamp(t, s, "acme", "t1"))
	missing := publish(t, p, "m1", nil)

	poll(t, c, h, 8)
	want := map[string]string{ok1: "acme#1", ok2: "globex#1", later: "acme#1", broken: "globex#1", unreadable: "acme#1"}
	if diff := cmp.Diff(want, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	dead := map[string]string{
		forged: "stamp:signature after 1", tampered: "stamp:body_digest after 1", missing: "stamp:missing after 1",
		unreadable: "handler:invalid_order after 1",
	}
	if diff := cmp.Diff(dead, deadLetters(t, client, stream)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if n := pending(t, client, stream); n != 2 {
		t.Errorf("%d entries pending, want the deferred and the failed", n)
	}
	poll(t, c, h, 0)
	clk.Add(time.Second)
	poll(t, c, h, 2)
	want[later], want[broken] = "acme#2", "globex#2"
	if diff := cmp.Diff(want, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	dead[broken] = "max_deliveries after 2"
	if diff := cmp.Diff(dead, deadLetters(t, client, stream)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if n := pending(t, client, stream); n != 0 {
		t.Errorf("%d entries pending, want none", n)
	}
}
