package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/redisstream"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"go.uber.org/goleak"
)

// binDir holds the orders binary the tests build, once.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fulfillment-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	goleak.VerifyTestMain(testservers.AfterRun(m, func() { os.RemoveAll(dir) }))
}

var (
	buildOnce sync.Once
	ordersBin string
	buildErr  error
)

// buildOrders builds examples/orders, once for the package's tests.
func buildOrders(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(binDir, "orders")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/tenancykit/tenancy/examples/orders").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build examples/orders: %v\n%s", err, out)
			return
		}
		ordersBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ordersBin
}

// ordersProc is examples/orders running as a process of its own.
type ordersProc struct {
	URL    string
	Stderr *syncbuf.Buffer
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startOrders runs the orders binary with env until the test ends.
func startOrders(t *testing.T, env map[string]string) *ordersProc {
	t.Helper()
	cmd := exec.Command(buildOrders(t))
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ordersProc{Stderr: new(syncbuf.Buffer)}
	copied := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-copied
		cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(p.Stderr, sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case p.URL = <-found:
	case <-copied:
		t.Fatalf("orders ended before listening:\n%s", p.Stderr)
	case <-time.After(time.Minute):
		t.Fatalf("orders did not listen within a minute:\n%s", p.Stderr)
	}
	return p
}

// clock is the worker's time, moved by the test.
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

// fixture is Redis or kinesalite, an issuer, orders (a process) and the
// worker (in the test's process, on the test's clock).
type fixture struct {
	redis     *redis.Client   // with Redis
	kinesis   *kinesis.Client // with Kinesis
	iss       *authztest.Issuer
	key       *ecdsa.PrivateKey // orders' stamp key (STAMP_KEY_FILE)
	keyFile   string
	orders    *ordersProc
	worker    *servicetest.Service
	clock     *clock
	meterFile string
	client    *http.Client
	// env and opts are the worker's, for startWorker.
	env  map[string]string
	opts []runOption
}

const stampKeyID = "orders-test"

// start runs the whole: tiers, when not empty, is the worker's TIERS_FILE.
func start(t *testing.T, tiers string) *fixture {
	t.Helper()
	return startWith(t, tiers, nil)
}

// newFixture returns the parts of a fixture that do not depend on the
// transport: the issuer, the clock, orders' stamp key in a file.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		iss:       authztest.Start(t, authztest.WithAudience("orders-test")),
		clock:     &clock{now: time.Now().Add(time.Minute)}, // ahead of the stamps orders makes now
		meterFile: filepath.Join(t.TempDir(), "usage.jsonl"),
		client:    servicetest.NewClient(t),
	}
	var err error
	if f.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		t.Fatal(err)
	}
	f.keyFile = filepath.Join(t.TempDir(), "stamp.pem")
	if err := os.WriteFile(f.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// startOrders runs orders with the events' settings of env, and keeps
// the worker's environment: env, ORDERS_JWKS_URL, METER_FILE, more, and
// TIERS_FILE when tiers is not empty.
func (f *fixture) startOrders(t *testing.T, env map[string]string, tiers string, more map[string]string) {
	t.Helper()
	ordersEnv := map[string]string{
		"ADDR": "127.0.0.1:0", "AUTH_ISSUER": f.iss.URL(), "AUTH_AUDIENCE": f.iss.Audience(),
		"STAMP_KEY_FILE": f.keyFile, "STAMP_KEY_ID": stampKeyID,
	}
	for k, v := range env {
		ordersEnv[k] = v
	}
	f.orders = startOrders(t, ordersEnv)
	f.env = map[string]string{
		"ADDR":            "127.0.0.1:0",
		"ORDERS_JWKS_URL": f.orders.URL + "/.well-known/jwks.json",
		"METER_FILE":      f.meterFile,
	}
	for _, m := range []map[string]string{env, more} {
		for k, v := range m {
			f.env[k] = v
		}
	}
	if tiers != "" {
		f.env["TIERS_FILE"] = filepath.Join(t.TempDir(), "tiers.json")
		if err := os.WriteFile(f.env["TIERS_FILE"], []byte(tiers), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// startWorker runs the worker with the fixture's environment and
// options, in the test's process.
func (f *fixture) startWorker(t *testing.T) {
	t.Helper()
	f.worker = servicetest.Start(t, f.env, func(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(string)) error {
		return run(ctx, []string{"fulfillment"}, getenv, stdout, stderr,
			append([]runOption{withReady(ready), withClock(f.clock.Now), withBlock(10 * time.Millisecond)}, f.opts...)...)
	})
}

// startWith runs the whole on Redis with more of the worker's
// environment, and opts.
func startWith(t *testing.T, tiers string, more map[string]string, opts ...runOption) *fixture {
	t.Helper()
	rs := testservers.Redis(t)
	f := newFixture(t)
	f.redis = redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { f.redis.Close() })
	f.startOrders(t, map[string]string{"REDIS_URL": "redis://" + rs.Addr + "/0"}, tiers, more)
	if _, ok := f.env["CONSUMER_NAME"]; !ok {
		f.env["CONSUMER_NAME"] = "w1"
	}
	f.opts = opts
	f.startWorker(t)
	return f
}

// placed is an order orders answered 201 for.
type placed struct{ ID, TenantID string }

// place posts an order as tenant (of tier) with the traceparent, when not
// empty.
func (f *fixture) place(t *testing.T, tenantID, tier, item, traceparent string) placed {
	t.Helper()
	req, _ := http.NewRequest("POST", f.orders.URL+"/orders", strings.NewReader(`{"item":"`+item+`","quantity":1}`))
	req.Header.Set("Authorization", "Bearer "+f.iss.MustMint(tenantID, tier))
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("Traceparent", traceparent)
	}
	r := servicetest.Send(t, f.client, req)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /orders: %d %s", r.Status, r.Body)
	}
	var o placed
	json.Unmarshal(r.Body, &struct {
		ID       *string `json:"id"`
		TenantID *string `json:"tenant_id"`
	}{&o.ID, &o.TenantID})
	return o
}

// waitLines waits until the worker has logged at least n lines with the
// fields of want, and returns them.
func (f *fixture) waitLines(t *testing.T, want servicetest.LogLine, n int) []servicetest.LogLine {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		got := servicetest.LinesWhere(f.worker.Lines(t), want)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines with %v after a minute, want %d; stdout:\n%s", len(got), want, n, f.worker.Stdout)
		}
		<-tick.C
	}
}

// entryIDs returns the message ID of each order's event, by order ID:
// its Redis entry ID, or its Kinesis record's kinesisstream.MessageID.
func (f *fixture) entryIDs(t *testing.T) map[string]string {
	t.Helper()
	if f.kinesis != nil {
		return f.recordIDs(t)
	}
	entries, err := f.redis.XRange(context.Background(), defaultStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		var ev orderEvent
		body, _ := e.Values["body"].(string)
		if json.Unmarshal([]byte(body), &ev) == nil && ev.Order.ID != "" {
			out[ev.Order.ID] = e.ID
		}
	}
	return out
}

// deadLetters returns the reason of each dead letter, by the message ID the
// message had.
func (f *fixture) deadLetters(t *testing.T) map[string]string {
	t.Helper()
	if f.kinesis != nil {
		return f.kinesisDeadLetters(t)
	}
	entries, err := f.redis.XRange(context.Background(), defaultStream+":dead", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		out[e.Values["id"].(string)] = e.Values["reason"].(string)
	}
	return out
}

// usage stops the worker and sums its METER_FILE: key is
// "tenant meter" or "tenant meter reason".
// checkFulfilledOnce checks the end of a run of 4 orders of acme and 3
// of globex: each fulfilled once (lines), none dead-lettered, and each
// metered once.
func (f *fixture) checkFulfilledOnce(t *testing.T, lines []servicetest.LogLine, orders int) {
	t.Helper()
	if n := len(servicetest.LinesWhere(lines, servicetest.LogLine{"msg": "order fulfilled"})); n != orders {
		t.Errorf("%d orders fulfilled, want %d", n, orders)
	}
	if dl := f.deadLetters(t); len(dl) != 0 {
		t.Errorf("dead letters %v, want none", dl)
	}
	u := f.usage(t)
	for key, want := range map[string]float64{
		"acme orders.fulfilled": 4, "globex orders.fulfilled": 3,
		"acme messages": 4, "globex messages": 3,
	} {
		if u[key] != want {
			t.Errorf("usage %q = %v, want %v (all: %v)", key, u[key], want, u)
		}
	}
}

func (f *fixture) usage(t *testing.T) map[string]float64 {
	t.Helper()
	f.worker.Stop(t)
	b, err := os.ReadFile(f.meterFile)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r meter.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("METER_FILE line %s: %v", line, err)
		}
		key := r.TenantID + " " + r.Meter
		if reason := r.Dimensions["reason"]; reason != "" {
			key += " " + reason
		}
		out[key] += r.Value
	}
	return out
}

func traceparent(traceID string) string { return "00-" + traceID + "-00f067aa0ba902b7-01" }

// TestEachOrderFulfilledOnceAsItsTenant: orders placed for two tenants,
// interleaved, are each fulfilled exactly once, as the tenant that placed
// it, with the message ID as request_id on the worker's lines; the
// usage is metered per tenant, exactly.
func TestEachOrderFulfilledOnceAsItsTenant(t *testing.T) {
	f := start(t, "")
	var orders []placed
	for i := range 4 {
		orders = append(orders, f.place(t, "acme", "premium", fmt.Sprint("anvil-", i), ""))
		if i < 3 {
			orders = append(orders, f.place(t, "globex", "basic", fmt.Sprint("bolt-", i), ""))
		}
	}
	f.waitLines(t, servicetest.LogLine{"msg": "order fulfilled"}, len(orders))
	f.waitLines(t, servicetest.LogLine{"msg": "message", "outcome": "acked"}, len(orders))
	lines := f.worker.Lines(t)
	entries := f.entryIDs(t)
	for _, o := range orders {
		l := servicetest.OneLine(t, lines, servicetest.LogLine{"msg": "order fulfilled", "order_id": o.ID})
		if l.Str("tenant_id") != o.TenantID || l.Str("request_id") != entries[o.ID] || entries[o.ID] == "" {
			t.Errorf("order %s of %s fulfilled as %s, request_id %s; want its tenant and its message %s",
				o.ID, o.TenantID, l.Str("tenant_id"), l.Str("request_id"), entries[o.ID])
		}
		servicetest.OneLine(t, lines, servicetest.LogLine{"msg": "message", "request_id": entries[o.ID], "tenant_id": o.TenantID, "outcome": "acked"})
	}
	f.checkFulfilledOnce(t, lines, len(orders))
}

// TestTraceContinues: the worker's lines for a message carry the trace ID
// of the POST request that placed the order.
func TestTraceContinues(t *testing.T) {
	f := start(t, "")
	const traceA, traceB = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"
	a := f.place(t, "acme", "premium", "anvil", traceparent(traceA))
	b := f.place(t, "globex", "basic", "bolt", traceparent(traceB))
	f.waitLines(t, servicetest.LogLine{"msg": "message", "outcome": "acked"}, 2)
	lines := f.worker.Lines(t)
	for _, c := range []struct {
		o     placed
		trace string
	}{{a, traceA}, {b, traceB}} {
		id := f.entryIDs(t)[c.o.ID]
		for _, msg := range []string{"order fulfilled", "message"} {
			l := servicetest.OneLine(t, lines, servicetest.LogLine{"msg": msg, "request_id": id})
			if l.Str("trace_id") != c.trace {
				t.Errorf("%q line of order %s: trace_id %q, want the POST's %s", msg, c.o.ID, l.Str("trace_id"), c.trace)
			}
		}
	}
}

// TestRefusedStampsAreDeadLettered: stamps forged (signed by another key
// under orders' key ID), missing, expired, made for another body, and
// replayed (an entry of orders' copied to a new entry) never run: each is
// in the dead-letter stream with its reason, and counted as denied; the
// one real event runs once.
func TestRefusedStampsAreDeadLettered(t *testing.T) {
	f := start(t, "")
	ctx := context.Background()
	real := f.place(t, "acme", "premium", "anvil", "")
	f.waitLines(t, servicetest.LogLine{"msg": "order fulfilled", "order_id": real.ID}, 1)
	realEntry, err := f.redis.XRange(ctx, defaultStream, "-", "+").Result()
	if err != nil || len(realEntry) != 1 {
		t.Fatalf("stream: %v %v, want orders' one entry", realEntry, err)
	}

	acme := tenant.NewContext(ctx, tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Source: tenant.SourceToken})
	body := func(id string) []byte {
		return []byte(`{"type":"order.created","order":{"id":"` + id + `","tenant_id":"acme","user_id":"u","item":"anvil","quantity":1}}`)
	}
	signer := func(key *ecdsa.PrivateKey, now func() time.Time) *stamp.Signer {
		s, err := stamp.NewSigner(defaultStampIssuer, key, stampKeyID, stamp.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	stampOf := func(s *stamp.Signer, b []byte) map[string]string {
		attrs, err := s.Stamp(acme, b, stamp.WithDestination("fulfillment"))
		if err != nil {
			t.Fatal(err)
		}
		return attrs
	}
	pub, err := redisstream.NewPublisher(f.redis, defaultStream)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(b []byte, attrs map[string]string) string {
		id, err := pub.Publish(ctx, b, attrs)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dayAgo := func() time.Time { return f.clock.Now().Add(-25 * time.Hour) }
	realAttrs := map[string]string{}
	for k, v := range realEntry[0].Values {
		if name, ok := strings.CutPrefix(k, "attr:"); ok {
			realAttrs[name] = v.(string)
		}
	}
	want := map[string]string{
		publish(body("forged"), stampOf(signer(other, f.clock.Now), body("forged"))): "stamp:signature",
		publish(body("missing"), nil): "stamp:missing",
		publish(body("expired"), stampOf(signer(f.key, dayAgo), body("expired"))):        "stamp:expired",
		publish(body("tampered"), stampOf(signer(f.key, f.clock.Now), body("original"))): "stamp:body_digest",
		publish([]byte(realEntry[0].Values["body"].(string)), realAttrs):                 "stamp:replayed",
	}
	f.waitLines(t, servicetest.LogLine{"msg": "message", "outcome": "rejected"}, len(want))
	got := f.deadLetters(t)
	for id, reason := range want {
		if got[id] != reason {
			t.Errorf("entry %s dead-lettered %q, want %q", id, got[id], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d dead letters, want %d: %v", len(got), len(want), got)
	}
	if n := len(servicetest.LinesWhere(f.worker.Lines(t), servicetest.LogLine{"msg": "order fulfilled"})); n != 1 {
		t.Errorf("%d orders fulfilled, want the real one only", n)
	}
	u := f.usage(t)
	for _, reason := range want {
		if u[" messages.denied "+reason] != 1 {
			t.Errorf("unattributed messages.denied %s = %v, want 1 (all: %v)", reason, u[" messages.denied "+reason], u)
		}
	}
	if u["acme orders.fulfilled"] != 1 {
		t.Errorf("acme orders.fulfilled = %v, want 1", u["acme orders.fulfilled"])
	}
}

// TestTenantOverBudgetIsDeferred: a tenant whose messages exceed its
// tier's burst has the rest deferred, not dead-lettered, and handled once
// its budget allows (the worker's clock moved), while another tenant is
// not held up.
func TestTenantOverBudgetIsDeferred(t *testing.T) {
	f := start(t, `{
		"basic":    {"rate": 0.001, "burst": 2},
		"standard": {"rate": 50, "burst": 100},
		"premium":  {"rate": 500, "burst": 1000},
		"platinum": {"rate": 2000, "burst": 4000}
	}`)
	var globex []placed
	for i := range 3 {
		globex = append(globex, f.place(t, "globex", "basic", fmt.Sprint("bolt-", i), ""))
	}
	acme := f.place(t, "acme", "premium", "anvil", "")
	f.waitLines(t, servicetest.LogLine{"msg": "message", "outcome": "deferred", "tenant_id": "globex", "rejected_by": "throttle"}, 1)
	f.waitLines(t, servicetest.LogLine{"msg": "order fulfilled", "order_id": acme.ID}, 1)
	fulfilled := servicetest.LinesWhere(f.worker.Lines(t), servicetest.LogLine{"msg": "order fulfilled", "tenant_id": "globex"})
	if len(fulfilled) != 2 {
		t.Fatalf("%d of globex's orders fulfilled within its burst, want 2", len(fulfilled))
	}

	f.clock.Add(1001 * time.Second) // one unit back at 0.001/s
	f.waitLines(t, servicetest.LogLine{"msg": "order fulfilled", "tenant_id": "globex"}, 3)
	lines := f.worker.Lines(t)
	for _, o := range globex {
		servicetest.OneLine(t, lines, servicetest.LogLine{"msg": "order fulfilled", "order_id": o.ID})
	}
	if dl := f.deadLetters(t); len(dl) != 0 {
		t.Errorf("dead letters %v, want none: a deferral never dead-letters", dl)
	}
	u := f.usage(t)
	for key, want := range map[string]float64{
		"globex orders.fulfilled": 3, "globex messages.denied throttle:rate": 1, "acme orders.fulfilled": 1,
	} {
		if u[key] != want {
			t.Errorf("usage %q = %v, want %v (all: %v)", key, u[key], want, u)
		}
	}
}

// TestNoisyNeighbourBacklog: acme's backlog of 60 orders is on the stream
// before globex's 3, and the worker has 2 workers (WORKERS) and reads 40
// messages at once (CONSUMER_CONCURRENCY). The fair share holds 20 in
// line and defers the rest of acme's backlog, so the consumer reads past
// it: once globex's 3 wait in line (41 of acme's deferred), the workers
// take turns, and globex's are all fulfilled after 5 of acme's (2 were
// running), where a plain pool would take all 60 first. Every order is
// then fulfilled once, acme's deferred ones when their time comes (the
// worker's clock moved), none dead-lettered.
func TestNoisyNeighbourBacklog(t *testing.T) {
	const backlog, few = 60, 3
	started := make(chan string, backlog+few)
	release := make(chan struct{})
	var releaseAll sync.Once
	hold := func(next message.Handler) message.Handler {
		return message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
			tn, _ := tenant.FromContext(ctx)
			started <- tn.ID
			<-release
			return next.HandleMessage(ctx, m)
		})
	}
	f := startWith(t, "", map[string]string{"WORKERS": "2", "CONSUMER_CONCURRENCY": "40"}, withHandler(hold))
	// A test that fails lets every held order go, so that the worker
	// can stop (this cleanup runs before the worker's).
	t.Cleanup(func() { releaseAll.Do(func() { close(release) }) })
	ctx := context.Background()
	signer, err := stamp.NewSigner(defaultStampIssuer, f.key, stampKeyID, stamp.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := redisstream.NewPublisher(f.redis, defaultStream)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(tenantID, tier string, n int) {
		tctx := tenant.NewContext(ctx, tenant.Tenant{ID: tenantID, Tier: tenant.DefaultTiers.MustLookup(tier), Source: tenant.SourceToken})
		for i := range n {
			body := []byte(fmt.Sprintf(`{"type":"order.created","order":{"id":"%s-%d","tenant_id":"%s","user_id":"u","item":"anvil","quantity":1}}`, tenantID, i, tenantID))
			attrs, err := signer.Stamp(tctx, body, stamp.WithDestination("fulfillment"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pub.Publish(ctx, body, attrs); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("acme", "premium", backlog)
	publish("globex", "basic", few)

	// 2 running, 20 waiting (3 of them globex's): the other 41 of acme's
	// deferred, each logged.
	f.waitLines(t, servicetest.LogLine{"msg": "message", "outcome": "deferred", "tenant_id": "acme", "reject_reason": "fair_share"}, backlog-2-20+few)
	// next is the tenant of the next order to start; none within a
	// minute fails the test instead of hanging it.
	next := func() string {
		t.Helper()
		select {
		case tn := <-started:
			return tn
		case <-time.After(time.Minute):
			t.Fatalf("no order started within a minute; stdout:\n%s", f.worker.Stdout)
			return ""
		}
	}
	var order []string
	for range 2 {
		order = append(order, next())
	}
	acmeFirst := 0
	for globex := 0; globex < few; {
		release <- struct{}{}
		switch tn := next(); tn {
		case "globex":
			globex++
		default:
			acmeFirst++
		}
	}
	releaseAll.Do(func() { close(release) })
	t.Logf("globex's %d orders ran after %d of acme's", few, 2+acmeFirst)
	if want := 2 + few; 2+acmeFirst > want+1 {
		t.Errorf("globex's %d orders ran after %d of acme's (the first %v), want about %d: a backlog of %d held them up",
			few, 2+acmeFirst, order, want, backlog)
	}

	// acme's deferred orders come back when due, on the worker's clock.
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		lines := servicetest.LinesWhere(f.worker.Lines(t), servicetest.LogLine{"msg": "order fulfilled"})
		if len(lines) >= backlog+few {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders fulfilled after a minute, want %d", len(lines), backlog+few)
		}
		f.clock.Add(time.Minute) // the longest a fair share defers
		<-tick.C
	}
	if dl := f.deadLetters(t); len(dl) != 0 {
		t.Errorf("dead letters %v, want none: a deferral never dead-letters", dl)
	}
	u := f.usage(t)
	for key, want := range map[string]float64{"acme orders.fulfilled": backlog, "globex orders.fulfilled": few} {
		if u[key] != want {
			t.Errorf("usage %q = %v, want %v: each order once (all: %v)", key, u[key], want, u)
		}
	}
	if u["acme messages.denied throttle:fair_share"] < backlog-2-20+few {
		t.Errorf("acme's fair_share deferrals metered %v, want at least %d", u["acme messages.denied throttle:fair_share"], backlog-2-20+few)
	}
}
