package tenancy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

const producer = "https://orders.example.com"

// msgClock is a time source the message tests move by hand.
type msgClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *msgClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *msgClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// consumer is a worker behind the whole message stack: a producer's
// signer, a verifier of its stamps, the message log, the meter, the
// throttle, and a queue, all on one clock.
type consumer struct {
	clk      *msgClock
	signer   *stamp.Signer
	verifier *stamp.Verifier
	logs     *syncbuf.Buffer
	logger   *slog.Logger
	usage    *meter.Recorder
	limiter  *throttle.Limiter
	queue    *memqueue.Queue

	mu      sync.Mutex
	records []meter.Record
}

// newConsumer returns a consumer whose throttle gives every tier lim.
func newConsumer(t *testing.T, lim throttle.Limits, throttleOpts ...throttle.Option) *consumer {
	t.Helper()
	c := &consumer{clk: &msgClock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}, logs: &syncbuf.Buffer{}}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if c.signer, err = stamp.NewSigner(producer, key, "k1", stamp.WithClock(c.clk.Now)); err != nil {
		t.Fatal(err)
	}
	if c.verifier, err = stamp.NewVerifier(context.Background(), producer, stamp.WithJWKS(c.signer.JWKS()), stamp.WithClock(c.clk.Now)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.verifier.Close() })
	c.logger = slog.New(logging.NewHandler(logging.NewJSONHandler(c.logs, nil)))
	limits := map[string]throttle.Limits{}
	for _, name := range tenant.DefaultTiers.Names() {
		limits[name] = lim
	}
	if c.limiter, err = throttle.New(tenant.DefaultTiers, limits, append([]throttle.Option{throttle.WithClock(c.clk.Now)}, throttleOpts...)...); err != nil {
		t.Fatal(err)
	}
	c.usage, err = meter.New("fulfillment", meter.SinkFunc(func(_ context.Context, recs []meter.Record) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.records = append(c.records, recs...)
		return nil
	}), meter.WithoutLoop(), meter.WithClock(c.clk.Now), meter.WithMeters(append(meter.MessageMeters(), meter.Meter{Name: "orders.fulfilled"})...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.usage.Shutdown(context.Background()) })
	c.queue = memqueue.New("orders", memqueue.WithClock(c.clk.Now))
	return c
}

// options are the stack's parts, with trust, or else the stamps, as the
// trust mode.
func (c *consumer) options(trust ...message.Middleware) []tenancy.Option {
	if len(trust) == 0 {
		trust = []message.Middleware{stamp.Trusted(c.verifier)}
	}
	return []tenancy.Option{
		tenancy.WithAccessLog(c.logger),
		tenancy.WithMeter(c.usage),
		tenancy.WithThrottle(c.limiter),
		tenancy.WithMessageTrust(trust...),
	}
}

// wrap returns h inside a stack of c's parts.
func (c *consumer) wrap(t *testing.T, h message.Handler, trust ...message.Middleware) message.Handler {
	t.Helper()
	s, err := tenancy.New(c.options(trust...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s.WrapMessages(h)
}

// publish stamps body for tenant id (premium, user "u-"+id) and queues it.
func (c *consumer) publish(t *testing.T, id, body string) string {
	t.Helper()
	ctx := tenant.NewContext(context.Background(), tenant.Tenant{ID: id, Tier: tenant.DefaultTiers.MustLookup("premium"), Subject: "u-" + id, Source: tenant.SourceToken})
	attrs, err := c.signer.Stamp(ctx, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return c.queue.Publish([]byte(body), attrs)
}

// lines decodes the lines logged with message msg.
func (c *consumer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(c.logs.String()), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// usageBy shuts the meter down and sums what it delivered, by "tenant
// meter reason".
func (c *consumer) usageBy(t *testing.T) map[string]float64 {
	t.Helper()
	if err := c.usage.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]float64{}
	for _, r := range c.records {
		k := r.TenantID + " " + r.Meter
		if reason := r.Dimensions["reason"]; reason != "" {
			k += " " + reason
		}
		if r.Dimensions["source"] != "orders" && strings.HasPrefix(r.Meter, "messages") {
			t.Errorf("record %+v: source %q, want orders", r, r.Dimensions["source"])
		}
		out[k] += r.Value
	}
	return out
}

// fulfil is the handler of the tests: business code that reads the
// tenant, logs and meters as an HTTP handler does.
func (c *consumer) fulfil(ctx context.Context, m *message.Message) error {
	t, _ := tenant.FromContext(ctx)
	c.logger.InfoContext(ctx, "fulfilled", "order", string(m.Body), "for", t.ID)
	meter.Add(ctx, "orders.fulfilled", 1)
	return nil
}

func TestWrapMessagesNeedsTrust(t *testing.T) {
	s, err := tenancy.New(tenancy.WithAccessLog(slog.Default()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "tenancy.WithMessageTrust") || !strings.Contains(msg, "stamp.Trusted") {
			t.Errorf("panic %q, want one naming WithMessageTrust and the trust modes", msg)
		}
	}()
	s.WrapMessages(message.HandlerFunc(func(context.Context, *message.Message) error { return nil }))
}

func TestNewRefusesMessageMistakes(t *testing.T) {
	for name, opt := range map[string]tenancy.Option{
		"no trust mode":   tenancy.WithMessageTrust(),
		"nil trust mode":  tenancy.WithMessageTrust(nil),
		"nil credentials": tenancy.WithMessageCredentials(nil),
	} {
		if _, err := tenancy.New(tenancy.WithAccessLog(slog.Default()), opt); err == nil || !strings.HasPrefix(err.Error(), "tenancy: WithMessage") {
			t.Errorf("%s: error %v, want one naming the option", name, err)
		}
	}
	if _, err := tenancy.New(tenancy.WithMessageTrust(message.UnverifiedAttribute("tenant"))); err != nil {
		t.Errorf("New with only a trust mode: %v", err)
	}
}

// TestWrapMessagesTwoTenants: two tenants' messages interleaved through
// one consumer are each metered and logged for their own tenant, exactly.
func TestWrapMessagesTwoTenants(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 100, Burst: 100})
	took := map[string]time.Duration{"acme": 10 * time.Millisecond, "globex": 30 * time.Millisecond}
	h := c.wrap(t, message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		c.clk.Add(took[tn.ID])
		return c.fulfil(ctx, m)
	}))
	tenantOf := map[string]string{}
	for i := range 3 {
		for _, id := range []string{"acme", "globex"} {
			body := fmt.Sprintf(`{"order":"%s-%d"}`, id, i)
			tenantOf[c.publish(t, id, body)] = id
		}
	}
	if n := c.queue.Drain(context.Background(), h); n != 6 {
		t.Fatalf("delivered %d, want 6", n)
	}
	bytes := map[string]float64{}
	for _, m := range c.queue.Acked() {
		bytes[tenantOf[m.ID]] += float64(len(m.Body))
	}
	if len(c.queue.Acked()) != 6 {
		t.Fatalf("acked %d of 6; dead letters %v", len(c.queue.Acked()), c.queue.DeadLetters())
	}

	for _, kind := range []string{"message", "fulfilled"} {
		lines := c.lines(t, kind)
		if len(lines) != 6 {
			t.Fatalf("%d %q lines, want 6", len(lines), kind)
		}
		for _, l := range lines {
			id, _ := l["request_id"].(string)
			want := tenantOf[id]
			if want == "" || l["tenant_id"] != want || l["user_id"] != "u-"+want || l["tenant_tier"] != "premium" {
				t.Errorf("%s line %v: want request_id a message ID and tenant %s", kind, l, want)
			}
			if kind == "message" && (l["outcome"] != "acked" || l["message_source"] != "orders" || l["deliveries"] != 1.0) {
				t.Errorf("message line %v", l)
			}
		}
	}

	want := map[string]float64{
		"acme messages":            3,
		"globex messages":          3,
		"acme orders.fulfilled":    3,
		"globex orders.fulfilled":  3,
		"acme messages.bytes":      bytes["acme"],
		"globex messages.bytes":    bytes["globex"],
		"acme messages.duration":   30,
		"globex messages.duration": 90,
	}
	if diff := cmp.Diff(want, c.usageBy(t)); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func ids(ms []message.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestWrapMessagesRefusedStamp: a forged stamp is dead-lettered with its
// reason and never runs as any tenant; its line and its meter name the
// refusal and no tenant.
func TestWrapMessagesRefusedStamp(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 10, Burst: 10})
	ran := false
	h := c.wrap(t, message.HandlerFunc(func(context.Context, *message.Message) error { ran = true; return nil }))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, err := stamp.NewSigner(producer, key, "k1", stamp.WithClock(c.clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := forger.Stamp(tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Source: tenant.SourceToken}), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.queue.Publish([]byte("a"), attrs)
	c.queue.Drain(context.Background(), h)
	if ran {
		t.Fatal("the handler ran for a forged stamp")
	}
	if d := c.queue.DeadLetters(); len(d) != 1 || d[0].Reason != "stamp:signature" {
		t.Fatalf("dead letters %v, want the message with stamp:signature", d)
	}
	lines := c.lines(t, "message")
	if len(lines) != 1 {
		t.Fatalf("%d message lines, want 1", len(lines))
	}
	l := lines[0]
	if l["request_id"] != id || l["outcome"] != "rejected" || l["rejected_by"] != "stamp" || l["reject_reason"] != "signature" || l["level"] != "WARN" || l["tenant_id"] != nil {
		t.Errorf("line %v: want a rejected line naming the stamp's refusal and no tenant", l)
	}
	if diff := cmp.Diff(map[string]float64{" messages.denied stamp:signature": 1, " messages.bytes": 1}, c.usageBy(t)); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

// TestMessageLayersOrderChecked: a layer wired by hand around one that
// belongs outside it panics when built, naming the order and the fix; with
// something else between them, the first message reports it once.
func TestMessageLayersOrderChecked(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 10, Burst: 10})
	h := message.HandlerFunc(c.fulfil)
	func() {
		defer func() {
			msg, _ := recover().(string)
			if !strings.HasPrefix(msg, "logging: logging.MessageLog runs inside meter.MessageMiddleware") || !strings.Contains(msg, "WrapMessages") {
				t.Errorf("panic %q, want one naming the two layers and the fix", msg)
			}
		}()
		meter.MessageMiddleware(c.usage)(logging.MessageLog(c.logger)(h))
	}()

	reported := requesttest.CaptureReports(t)
	between := func(next message.Handler) message.Handler {
		return message.HandlerFunc(func(ctx context.Context, m *message.Message) error { return next.HandleMessage(ctx, m) })
	}
	wrong := c.limiter.MessageMiddleware()(between(stamp.Trusted(c.verifier)(h)))
	c.publish(t, "acme", "a1")
	c.publish(t, "acme", "a2")
	c.queue.Drain(context.Background(), wrong)
	if reports := reported(); len(reports) != 1 || !strings.Contains(reports[0], "(throttle.Limiter).MessageMiddleware before any trust mode") || !strings.Contains(reports[0], "WrapMessages") {
		t.Errorf("reports %q, want one naming the throttle outside the trust mode", reports)
	}
	if d := c.queue.DeadLetters(); len(d) != 2 || d[0].Reason != "throttle:tenant_required" {
		t.Errorf("dead letters %v: the misordered throttle was expected to refuse both", d)
	}
}
