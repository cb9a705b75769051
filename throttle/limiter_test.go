package throttle_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

func TestNewErrors(t *testing.T) {
	bad := throttle.Limits{Rate: 5, Burst: 0}
	with := func(f func(map[string]throttle.Limits)) map[string]throttle.Limits {
		m := tierLimits()
		f(m)
		return m
	}
	tests := []struct {
		name   string
		tiers  *tenant.Tiers
		limits map[string]throttle.Limits
		opts   []throttle.Option
		want   []string // every one must appear in the error
	}{
		{name: "nil tiers", limits: tierLimits(), want: []string{"tenant.Tiers"}},
		{name: "no limits at all", tiers: tiers, want: []string{"basic", "standard", "premium", "platinum", "every tier needs limits"}},
		{name: "missing tiers", tiers: tiers,
			limits: map[string]throttle.Limits{"basic": basic, "premium": premium},
			want:   []string{"standard", "platinum", "every tier needs limits"}},
		{name: "unknown tier", tiers: tiers,
			limits: with(func(m map[string]throttle.Limits) { m["gold"] = premium }),
			want:   []string{`"gold"`, "unknown tier"}},
		{name: "bad tier limits", tiers: tiers,
			limits: with(func(m map[string]throttle.Limits) { m["premium"] = bad }),
			want:   []string{`tier "premium"`, "Burst"}},
		{name: "bad quota", tiers: tiers,
			limits: with(func(m map[string]throttle.Limits) {
				m["standard"] = throttle.Limits{Rate: 1, Burst: 1, Quotas: []throttle.Quota{{Limit: 0, Period: throttle.Day}}}
			}),
			want: []string{`tier "standard"`, "Quotas[0].Limit"}},
		{name: "same tier twice", tiers: tiers,
			limits: with(func(m map[string]throttle.Limits) { m["Basic"] = premium }),
			want:   []string{`"Basic"`, `"basic"`}},
		{name: "override with empty tenant ID", tiers: tiers, limits: tierLimits(),
			opts: []throttle.Option{throttle.WithOverrides(map[string]throttle.Limits{"": premium})},
			want: []string{"override", "invalid tenant ID"}},
		{name: "override with control character", tiers: tiers, limits: tierLimits(),
			opts: []throttle.Option{throttle.WithOverrides(map[string]throttle.Limits{"acme\x00": premium})},
			want: []string{"override", "invalid tenant ID"}},
		{name: "override with bad limits", tiers: tiers, limits: tierLimits(),
			opts: []throttle.Option{throttle.WithOverrides(map[string]throttle.Limits{"acme": {Rate: -1, Burst: 1}})},
			want: []string{`override for tenant "acme"`, "Rate"}},
		{name: "anonymous limits", tiers: tiers, limits: tierLimits(),
			opts: []throttle.Option{throttle.WithAnonymousLimits(bad)},
			want: []string{"WithAnonymousLimits", "Burst"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := throttle.New(tt.tiers, tt.limits, tt.opts...)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", l)
			}
			if l != nil {
				t.Errorf("New returned a Limiter with the error %v", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "throttle: ") {
				t.Errorf("error %q does not start with \"throttle: \"", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %s", msg, w)
				}
			}
		})
	}

	// The errors wrap what they report, for errors.Is.
	_, err := throttle.New(tiers, map[string]throttle.Limits{"gold": basic})
	if !errors.Is(err, tenant.ErrUnknownTier) {
		t.Errorf("unknown tier: %v does not wrap tenant.ErrUnknownTier", err)
	}
	_, err = throttle.New(tiers, tierLimits(), throttle.WithOverrides(map[string]throttle.Limits{" acme": basic}))
	if !errors.Is(err, tenant.ErrInvalidID) {
		t.Errorf("bad override ID: %v does not wrap tenant.ErrInvalidID", err)
	}
	// Nil options are ignored.
	if _, err := throttle.New(tiers, tierLimits(), nil, nil); err != nil {
		t.Errorf("New with nil options: %v", err)
	}
}

// TestNilOptionValues: an option given nil leaves its default in place;
// WithClock(nil) is time.Now.
func TestNilOptionValues(t *testing.T) {
	ts := tenant.MustTiers("solo")
	hourly := throttle.Limits{Rate: 1000, Burst: 1000, Quotas: []throttle.Quota{{Limit: 1, Period: throttle.Hour}}}
	l, err := throttle.New(ts, map[string]throttle.Limits{"solo": hourly},
		throttle.WithClock(nil), throttle.WithStore(nil), throttle.WithMemoryStore(nil),
		throttle.WithMeterProvider(nil), throttle.WithOverrides(nil))
	if err != nil {
		t.Fatalf("New with nil option values: %v", err)
	}
	tn := mustTenant(t, "acme", ts.MustLookup("solo"))
	ctx := context.Background()
	if d, err := l.Allow(ctx, tn, 1); err != nil || !d.Allowed {
		t.Fatalf("first Allow = %+v, %v", d, err)
	}
	d, err := l.Allow(ctx, tn, 1)
	now := time.Now()
	if err != nil || d.Allowed || d.Reason != throttle.ReasonQuota {
		t.Fatalf("second Allow = %+v, %v; want refused by the hourly quota", d, err)
	}
	// Refused until the top of the hour of the system clock.
	want := now.Truncate(time.Hour).Add(time.Hour).Sub(now)
	if diff := d.RetryAfter - want; diff < -5*time.Second || diff > 5*time.Second {
		t.Errorf("RetryAfter = %v, want about %v: the clock is not time.Now", d.RetryAfter, want)
	}
}

func TestLimitsFor(t *testing.T) {
	override := throttle.Limits{Rate: 42, Burst: 7}
	l := newLimiter(t, newClock(start), nil, throttle.WithOverrides(map[string]throttle.Limits{"acme": override}))
	other := tenant.MustTiers("gold", "silver")
	tests := []struct {
		name string
		t    tenant.Tenant
		want throttle.Limits
	}{
		{"override beats tier", tenant.Tenant{ID: "acme", Tier: tiers.MustLookup("premium")}, override},
		{"override with unknown tier", tenant.Tenant{ID: "acme"}, override},
		{"tier", tenant.Tenant{ID: "globex", Tier: tiers.MustLookup("premium")}, premium},
		{"tier looked up in another case", tenant.Tenant{ID: "globex", Tier: tiers.MustLookup("PLATINUM")}, platinum},
		{"unknown tier gets the lowest", tenant.Tenant{ID: "globex"}, basic},
		{"tier of another set gets the lowest", tenant.Tenant{ID: "globex", Tier: other.MustLookup("gold")}, basic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, l.LimitsFor(tt.t)); diff != "" {
				t.Errorf("LimitsFor (-want +got):\n%s", diff)
			}
		})
	}

	// The Limiter keeps its own copy of what it was given.
	in := map[string]throttle.Limits{"acme": {Rate: 1, Burst: 1, Quotas: []throttle.Quota{{Limit: 5, Period: throttle.Day}}}}
	limits := tierLimits()
	l = newLimiter(t, newClock(start), limits, throttle.WithOverrides(in))
	in["acme"].Quotas[0].Limit = 500
	limits["basic"] = premium
	acme := tenant.Tenant{ID: "acme"}
	if got := l.LimitsFor(acme).Quotas[0].Limit; got != 5 {
		t.Errorf("changing the caller's override map changed the Limiter: quota %d", got)
	}
	if diff := cmp.Diff(basic, l.LimitsFor(tenant.Tenant{ID: "x"})); diff != "" {
		t.Errorf("changing the caller's limits map changed the Limiter (-want +got):\n%s", diff)
	}
}

// TestRuntimeChanges: SetTierLimits, SetOverride, DeleteOverride and a
// changed tier apply from the tenant's very next request. A basic tenant
// flooding at 200 requests a second is upgraded mid-flood: from the next
// request on, it is refused no more.
func TestRuntimeChanges(t *testing.T) {
	const flood = 5 * time.Millisecond // 200 requests a second
	tests := []struct {
		name      string
		upgrade   func(*throttle.Limiter, *tenant.Tenant) error
		downgrade func(*throttle.Limiter, *tenant.Tenant) error
	}{
		{
			name:      "tier changes",
			upgrade:   func(_ *throttle.Limiter, tn *tenant.Tenant) error { tn.Tier = tiers.MustLookup("premium"); return nil },
			downgrade: func(_ *throttle.Limiter, tn *tenant.Tenant) error { tn.Tier = tiers.MustLookup("basic"); return nil },
		},
		{
			name:    "SetOverride",
			upgrade: func(l *throttle.Limiter, tn *tenant.Tenant) error { return l.SetOverride(tn.ID, premium) },
			downgrade: func(l *throttle.Limiter, tn *tenant.Tenant) error {
				l.DeleteOverride(tn.ID)
				return nil
			},
		},
		{
			name:      "SetTierLimits",
			upgrade:   func(l *throttle.Limiter, _ *tenant.Tenant) error { return l.SetTierLimits("basic", premium) },
			downgrade: func(l *throttle.Limiter, _ *tenant.Tenant) error { return l.SetTierLimits("basic", basic) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(start)
			l := newLimiter(t, clk, nil)
			tn := mustTenant(t, "acme", tiers.MustLookup("basic"))
			ctx := context.Background()
			send := func(n int) (admitted int, first throttle.Decision) {
				for i := range n {
					clk.Advance(flood)
					d, err := l.Allow(ctx, tn, 1)
					if err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						first = d
					}
					if d.Allowed {
						admitted++
					}
				}
				return admitted, first
			}

			// Two seconds of flood on basic: the burst at the first 10
			// requests (5ms to 50ms), then one every 200ms from 205ms.
			if got, _ := send(400); got != 10+9 {
				t.Fatalf("basic flood: %d admitted in 2s, want 19", got)
			}
			if err := tt.upgrade(l, &tn); err != nil {
				t.Fatal(err)
			}
			got, first := send(400)
			if diff := cmp.Diff(premium, first.Limits); diff != "" {
				t.Errorf("first decision after the upgrade used other limits (-premium +used):\n%s", diff)
			}
			if got != 400 {
				t.Fatalf("after the upgrade: %d of 400 admitted, want every one", got)
			}
			if err := tt.downgrade(l, &tn); err != nil {
				t.Fatal(err)
			}
			_, first = send(1)
			if diff := cmp.Diff(basic, first.Limits); diff != "" {
				t.Errorf("first decision after the downgrade used other limits (-basic +used):\n%s", diff)
			}
			// Once the bucket is empty again, exactly 5 a second.
			send(399)
			if got, _ := send(1600); got != 8*5 {
				t.Errorf("back on basic: %d admitted in 8s, want 40", got)
			}
		})
	}
}

func TestRuntimeChangeErrors(t *testing.T) {
	l := newLimiter(t, newClock(start), nil)
	bad := throttle.Limits{Rate: 1, Burst: 0}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"SetTierLimits unknown tier", l.SetTierLimits("gold", premium), []string{"throttle: ", "SetTierLimits", `"gold"`}},
		{"SetTierLimits bad limits", l.SetTierLimits("premium", bad), []string{"throttle: ", `tier "premium"`, "Burst"}},
		{"SetOverride bad ID", l.SetOverride("", premium), []string{"throttle: ", "SetOverride", "invalid tenant ID"}},
		{"SetOverride bad limits", l.SetOverride("acme", bad), []string{"throttle: ", `tenant "acme"`, "Burst"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(tt.err.Error(), w) {
					t.Errorf("error %q does not mention %s", tt.err, w)
				}
			}
		})
	}
	// Nothing changed.
	if diff := cmp.Diff(premium, l.LimitsFor(tenant.Tenant{ID: "acme", Tier: tiers.MustLookup("premium")})); diff != "" {
		t.Errorf("a refused change took effect (-want +got):\n%s", diff)
	}
	// Deleting an override that does not exist is fine.
	l.DeleteOverride("nobody")
}

// TestConcurrentChanges changes overrides and tier limits while 16
// goroutines decide: every decision is made under one of the limits that
// were in force, never a mixture, and the race detector sees no race.
func TestConcurrentChanges(t *testing.T) {
	clk := newClock(start)
	l := newLimiter(t, clk, nil)
	override := throttle.Limits{Rate: 77, Burst: 77, Quotas: []throttle.Quota{{Limit: 1 << 30, Period: throttle.Day}}}
	raised := throttle.Limits{Rate: 9, Burst: 99}
	valid := []throttle.Limits{basic, override, raised}
	tn := mustTenant(t, "acme", tiers.MustLookup("basic"))

	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		mixtures atomic.Int64
	)
	for g := range 16 {
		wg.Go(func() {
			ctx := context.Background()
			for i := 0; !stop.Load() || i < 200; i++ {
				clk.Advance(time.Microsecond)
				d, err := l.Allow(ctx, mustTenant(t, "acme-"+strconv.Itoa(g%4), tn.Tier), 1)
				if err != nil {
					t.Error(err)
					return
				}
				d2, _ := l.Allow(ctx, tn, 1)
				if !slices.ContainsFunc(valid, func(v throttle.Limits) bool { return cmp.Equal(v, d.Limits) }) ||
					!slices.ContainsFunc(valid, func(v throttle.Limits) bool { return cmp.Equal(v, d2.Limits) }) {
					mixtures.Add(1)
				}
			}
		})
	}
	for i := range 500 {
		if err := l.SetOverride("acme", override); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			l.SetTierLimits("basic", raised)
		} else {
			l.SetTierLimits("basic", basic)
		}
		l.DeleteOverride("acme")
	}
	l.SetOverride("acme", override)
	stop.Store(true)
	wg.Wait()
	if n := mixtures.Load(); n != 0 {
		t.Errorf("%d decisions under limits that were never set", n)
	}
	if diff := cmp.Diff(override, l.LimitsFor(tn)); diff != "" {
		t.Errorf("last change lost (-want +got):\n%s", diff)
	}
}

func TestAcquire(t *testing.T) {
	clk := newClock(start)
	limits := tierLimits()
	capped := premium
	capped.MaxConcurrent = 2
	limits["premium"] = capped
	l := newLimiter(t, clk, limits)
	acme := mustTenant(t, "acme", tiers.MustLookup("premium"))
	globex := mustTenant(t, "globex", tiers.MustLookup("premium"))

	r1, ok1 := l.Acquire(acme)
	r2, ok2 := l.Acquire(acme)
	_, ok3 := l.Acquire(acme)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("three Acquires with a cap of 2 = %v, %v, %v; want true, true, false", ok1, ok2, ok3)
	}
	// Slots are per tenant.
	rg, ok := l.Acquire(globex)
	if !ok {
		t.Fatal("another tenant refused: slots are shared between tenants")
	}
	rg()
	r1()
	r4, ok := l.Acquire(acme)
	if !ok {
		t.Fatal("Acquire refused after a release")
	}
	if _, ok := l.Acquire(acme); ok {
		t.Fatal("Acquire admitted a third in flight after a release")
	}
	r2()
	r4()

	// Without a cap Acquire always succeeds, and its release is harmless.
	free := mustTenant(t, "initech", tiers.MustLookup("basic"))
	for range 100 {
		release, ok := l.Acquire(free)
		if !ok || release == nil {
			t.Fatal("Acquire refused for a tier without a cap")
		}
		defer release()
	}

	// The cap follows runtime changes too.
	if err := l.SetOverride("acme", throttle.Limits{Rate: 1, Burst: 1, MaxConcurrent: 1}); err != nil {
		t.Fatal(err)
	}
	r5, ok := l.Acquire(acme)
	if !ok {
		t.Fatal("Acquire refused under the override")
	}
	if _, ok := l.Acquire(acme); ok {
		t.Fatal("second Acquire admitted under an override capping at 1")
	}
	r5()
}

// TestBucketPerTenant: the bucket key is the tenant, not its tier: two
// basic tenants each get their full burst.
func TestBucketPerTenant(t *testing.T) {
	clk := newClock(start)
	l := newLimiter(t, clk, nil, throttle.WithOverrides(map[string]throttle.Limits{"initech": {Rate: 1, Burst: 1}}))
	ctx := context.Background()
	count := func(tn tenant.Tenant, n int) int {
		admitted := 0
		for range n {
			if d, _ := l.Allow(ctx, tn, 1); d.Allowed {
				admitted++
			}
		}
		return admitted
	}
	b := tiers.MustLookup("basic")
	got := map[string]int{
		"acme":    count(mustTenant(t, "acme", b), 50),
		"globex":  count(mustTenant(t, "globex", b), 50),
		"initech": count(mustTenant(t, "initech", b), 50),
		"hooli":   count(mustTenant(t, "hooli", tiers.MustLookup("premium")), 50),
	}
	want := map[string]int{"acme": 10, "globex": 10, "initech": 1, "hooli": 50}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admitted per tenant (-want +got):\n%s", diff)
	}
}

// fakeStore is a Store whose answer the test sets.
type fakeStore struct {
	res   throttle.Result
	err   error
	calls atomic.Int64
}

func (f *fakeStore) Take(ctx context.Context, key string, lim throttle.Limits, cost int, now time.Time) (throttle.Result, error) {
	f.calls.Add(1)
	return f.res, f.err
}

func TestAllowStoreError(t *testing.T) {
	errDown := errors.New("redis: connection refused")
	fs := &fakeStore{err: errDown, res: throttle.Result{Allowed: true}}
	l := newLimiter(t, newClock(start), nil, throttle.WithStore(fs), throttle.WithLogger(slog.New(slog.DiscardHandler)))
	d, err := l.Allow(context.Background(), mustTenant(t, "acme", tiers.MustLookup("basic")), 1)
	if !errors.Is(err, errDown) {
		t.Errorf("Allow error = %v, want the store's", err)
	}
	if d.Allowed || d.Reason != throttle.ReasonStore {
		t.Errorf("Allow with a failing store = allowed %v, reason %q; want refused, %q", d.Allowed, d.Reason, throttle.ReasonStore)
	}
	if fs.calls.Load() != 1 {
		t.Errorf("store called %d times, want 1", fs.calls.Load())
	}
}

// TestDecisionMetric reads the decision counter through the OTel SDK: one
// point per (tier, decision, reason), the right counts, and no tenant ID
// in any attribute.
func TestDecisionMetric(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })

	clk := newClock(start)
	limits := tierLimits()
	limits["platinum"] = throttle.Limits{Rate: 100, Burst: 100, Quotas: []throttle.Quota{{Limit: 1, Period: throttle.Day}}}
	limits["standard"] = throttle.Limits{Rate: 100, Burst: 100, MaxConcurrent: 1}
	l := newLimiter(t, clk, limits, throttle.WithMeterProvider(mp))
	ids := []string{"acme-corp-123", "globex-456", "initech-789", "hooli-000", "umbrella-1"}
	ctx := context.Background()

	allow := func(id, tier string, n int) {
		for range n {
			if _, err := l.Allow(ctx, mustTenant(t, id, tiers.MustLookup(tier)), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	allow(ids[0], "basic", 12) // 10 allowed, 2 rate
	allow(ids[1], "basic", 10) // 10 allowed
	allow(ids[2], "premium", 3)
	allow(ids[3], "platinum", 3) // 1 allowed, 2 quota

	// The middleware counts what Allow does not: no tenant, concurrency.
	h := l.Middleware()(okHandler)
	serve(h, nil, get("/"))
	hold := make(chan struct{})
	inside := make(chan struct{})
	slow := l.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(inside); <-hold }))
	umbrella := mustTenant(t, ids[4], tiers.MustLookup("standard"))
	done := make(chan struct{})
	go func() { defer close(done); serve(slow, &umbrella, get("/")) }()
	<-inside
	serve(h, &umbrella, get("/")) // refused: one in flight already
	close(hold)
	<-done

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	type key struct{ Tier, Decision, Reason string }
	got := map[key]int64{}
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "tenancy.throttle.decisions" {
				continue
			}
			found = true
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is a %T, want a Sum[int64]", m.Name, m.Data)
			}
			if !sum.IsMonotonic {
				t.Errorf("%s is not monotonic", m.Name)
			}
			for _, dp := range sum.DataPoints {
				var k key
				if n := dp.Attributes.Len(); n != 3 {
					t.Errorf("data point with %d attributes %v, want tier, decision, reason", n, dp.Attributes.ToSlice())
				}
				for _, kv := range dp.Attributes.ToSlice() {
					switch kv.Key {
					case tenant.TierKey:
						k.Tier = kv.Value.AsString()
					case "decision":
						k.Decision = kv.Value.AsString()
					case "reason":
						k.Reason = kv.Value.AsString()
					default:
						t.Errorf("unexpected attribute %v", kv)
					}
				}
				got[k] += dp.Value
			}
		}
	}
	if !found {
		t.Fatal("no tenancy.throttle.decisions metric")
	}
	want := map[key]int64{
		{"basic", "allowed", "none"}:          20,
		{"basic", "denied", "rate"}:           2,
		{"premium", "allowed", "none"}:        3,
		{"platinum", "allowed", "none"}:       1,
		{"platinum", "denied", "quota"}:       2,
		{"unknown", "denied", "no_tenant"}:    1,
		{"standard", "allowed", "none"}:       1,
		{"standard", "denied", "concurrency"}: 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}

	// No attribute anywhere, resource, scope or point, names a tenant.
	var all []attribute.KeyValue
	all = append(all, rm.Resource.Attributes()...)
	for _, sm := range rm.ScopeMetrics {
		all = append(all, sm.Scope.Attributes.ToSlice()...)
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					all = append(all, dp.Attributes.ToSlice()...)
				}
			}
		}
	}
	for _, kv := range all {
		for _, id := range ids {
			if strings.Contains(kv.Value.String(), id) {
				t.Errorf("attribute %s=%q carries the tenant ID %q", kv.Key, kv.Value.String(), id)
			}
		}
	}
}

// switchStore fails with err while it is set, and admits otherwise.
type switchStore struct{ err atomic.Pointer[error] }

func (s *switchStore) fail(err error) { s.err.Store(&err) }
func (s *switchStore) heal()          { s.err.Store(nil) }

func (s *switchStore) Take(context.Context, string, throttle.Limits, int, time.Time) (throttle.Result, error) {
	if p := s.err.Load(); p != nil {
		return throttle.Result{}, *p
	}
	return throttle.Result{Allowed: true, Remaining: 1}, nil
}

// TestStoreFailureLoggedOnce: a store failing with errors is logged once
// when it starts, with the error, and once when it answers again, with how
// many requests were refused meanwhile; every refusal is counted in the
// decisions metric instead of logged.
func TestStoreFailureLoggedOnce(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	var logs syncbuf.Buffer
	store := new(switchStore)
	clk := newClock(start)
	l := newLimiter(t, clk, nil, throttle.WithStore(store), throttle.WithMeterProvider(mp),
		throttle.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	h := l.Middleware()(okHandler)
	tn := mustTenant(t, "acme", tiers.MustLookup("basic"))

	lines := func() []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			delete(m, "time")
			out = append(out, m)
		}
		return out
	}
	hammer := func(n int) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range n / 8 {
					serve(h, &tn, get("/"))
				}
			})
		}
		wg.Wait()
	}

	store.fail(errors.New("redis: i/o timeout"))
	hammer(4000)
	clk.Advance(3 * time.Second)
	store.heal()
	hammer(80)
	store.fail(errors.New("redis: connection refused"))
	hammer(8)

	want := []map[string]any{
		{"level": "WARN", "msg": "throttle: the store failed; until it answers, each request it cannot decide is refused with 503 and counted in tenancy.throttle.decisions, not logged", "error": "redis: i/o timeout"},
		{"level": "INFO", "msg": "throttle: the store answers again", "refused": 4000.0, "down_for": "3s"},
		{"level": "WARN", "msg": "throttle: the store failed; until it answers, each request it cannot decide is refused with 503 and counted in tenancy.throttle.decisions, not logged", "error": "redis: connection refused"},
	}
	if diff := cmp.Diff(want, lines()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var refused int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "tenancy.throttle.decisions" {
				for _, dp := range sum.DataPoints {
					if r, _ := dp.Attributes.Value("reason"); r.AsString() == "store_unavailable" {
						refused += dp.Value
					}
				}
			}
		}
	}
	if refused != 4008 {
		t.Errorf("decisions refused for the store: %d, want 4008", refused)
	}
}

// TestStoreFailureCallerGone: a request whose client went away is not a
// store failure, and is not reported as one.
func TestStoreFailureCallerGone(t *testing.T) {
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	store := new(switchStore)
	store.fail(ctx.Err())
	l := newLimiter(t, newClock(start), nil, throttle.WithStore(store),
		throttle.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if d, _ := l.Allow(ctx, mustTenant(t, "acme", tiers.MustLookup("basic")), 1); d.Allowed {
		t.Error("allowed without a decision")
	}
	if logs.String() != "" {
		t.Errorf("logged %s", logs.String())
	}
}
