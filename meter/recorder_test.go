package meter_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

func TestNewRefusesBadConfig(t *testing.T) {
	ok := meter.SinkFunc(func(context.Context, []meter.Record) error { return nil })
	tests := []struct {
		name    string
		service string
		sink    meter.Sink
		opts    []meter.Option
		want    string
	}{
		{"no service", "", ok, nil, "service name"},
		{"no sink", "orders", nil, nil, "Sink"},
		{"window too short", "orders", ok, []meter.Option{meter.WithWindow(time.Millisecond)}, "WithWindow"},
		{"window not dividing a day", "orders", ok, []meter.Option{meter.WithWindow(7 * time.Minute)}, "WithWindow"},
		{"window negative", "orders", ok, []meter.Option{meter.WithWindow(-time.Minute)}, "WithWindow"},
		{"no dimension values", "orders", ok, []meter.Option{meter.WithMaxDimensionValues(-1)}, "WithMaxDimensionValues"},
		{"no pending records", "orders", ok, []meter.Option{meter.WithMaxPending(-1)}, "WithMaxPending"},
		{"no batch", "orders", ok, []meter.Option{meter.WithBatchSize(-1)}, "WithBatchSize"},
		{"backoff max below min", "orders", ok, []meter.Option{meter.WithBackoff(time.Second, time.Millisecond)}, "WithBackoff"},
		{"backoff negative", "orders", ok, []meter.Option{meter.WithBackoff(-time.Second, 0)}, "WithBackoff"},
		{"backoff without min", "orders", ok, []meter.Option{meter.WithBackoff(0, time.Second)}, "WithBackoff"},
		{"meter without name", "orders", ok, []meter.Option{meter.WithMeters(meter.Meter{})}, "without a name"},
		{"meter twice", "orders", ok, []meter.Option{meter.WithMeters(meter.Meter{Name: "a"}, meter.Meter{Name: "a"})}, `"a" declared twice`},
		{"reserved meter name", "orders", ok, []meter.Option{meter.WithMeters(meter.Meter{Name: "meter.undeclared"})}, "reserved"},
		{"heartbeat meter name", "orders", ok, []meter.Option{meter.WithMeters(meter.Meter{Name: meter.HeartbeatMeter})}, "reserved"},
		{"spool in a missing directory", "orders", ok, []meter.Option{meter.WithSpool(filepath.Join("missing-dir", "spool"))}, "WithSpool"},
		{"checkpoint without a spool", "orders", ok, []meter.Option{meter.WithCheckpoint(time.Second)}, "WithCheckpoint needs WithSpool"},
		{"checkpoint too often", "orders", ok, []meter.Option{meter.WithSpool(filepath.Join(t.TempDir(), "spool")), meter.WithCheckpoint(time.Millisecond)}, "WithCheckpoint"},
		{"too many dimensions", "orders", ok, []meter.Option{meter.WithMeters(meter.Meter{Name: "a", Dimensions: []string{"1", "2", "3", "4", "5"}})}, "at most 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := meter.New(tt.service, tt.sink, append([]meter.Option{meter.WithoutLoop()}, tt.opts...)...)
			if err == nil {
				r.Shutdown(context.Background())
				t.Fatal("New succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "meter: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %q, want the prefix \"meter: \" and %q", err, tt.want)
			}
		})
	}
}

// TestZeroOptionsMeanDefaults: an option given its zero value, and a nil
// option, leave the default in place.
func TestZeroOptionsMeanDefaults(t *testing.T) {
	s := &sink{}
	r, err := meter.New("orders", s, nil, meter.WithoutLoop(),
		meter.WithMeters(meter.Meter{Name: "api.calls", Dimensions: []string{"route"}}),
		meter.WithWindow(0), meter.WithClock(nil), meter.WithInstance(""), meter.WithSpool(""),
		meter.WithMaxDimensionValues(0), meter.WithMaxPending(0), meter.WithBatchSize(0),
		meter.WithBackoff(0, 0), meter.WithLogger(nil))
	if err != nil {
		t.Fatalf("New with zero option values: %v", err)
	}
	const tenants = meter.DefaultBatchSize + 1
	before := time.Now()
	for i := range tenants {
		meter.Add(meter.NewContext(tenantCtx(t, "tenant-"+strconv.Itoa(i)), r), "api.calls", 1, "/r/"+strconv.Itoa(i))
	}
	after := time.Now()
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := s.Records()
	if len(recs) != tenants {
		t.Fatalf("%d records, want %d", len(recs), tenants)
	}
	// One batch of DefaultBatchSize, then the rest.
	if b := s.Batches(); len(b) != 2 || len(b[0]) != meter.DefaultBatchSize {
		t.Errorf("%d batches, the first of %d records; want 2, the first of DefaultBatchSize", len(b), len(b[0]))
	}
	routes := map[string]bool{}
	for _, rec := range recs {
		if w := rec.WindowEnd.Sub(rec.WindowStart); w != meter.DefaultWindow {
			t.Fatalf("window %v, want DefaultWindow", w)
		}
		// The system clock: the window overlaps the time of the adds.
		if rec.WindowStart.After(after) || !rec.WindowEnd.After(before) {
			t.Fatalf("window %v to %v is not around the adds, %v to %v: the clock is not the system's", rec.WindowStart, rec.WindowEnd, before, after)
		}
		if rec.Instance == "" {
			t.Fatal("empty instance, want the host name and a suffix")
		}
		routes[rec.Dimensions["route"]] = true
	}
	// DefaultMaxTuples distinct routes, then the overflow.
	if len(routes) != meter.DefaultMaxTuples+1 || !routes[meter.Overflow] {
		t.Errorf("%d distinct routes (overflow %v), want DefaultMaxTuples and the overflow", len(routes), routes[meter.Overflow])
	}
}

// The meters most tests declare.
var testMeters = meter.WithMeters(
	meter.Meter{Name: "api.calls"},
	meter.Meter{Name: "storage.bytes", Unit: meter.UnitBytes},
	meter.Meter{Name: "jobs.run", Unit: meter.UnitSeconds, Dimensions: []string{"region", "size"}},
)

// checkWindows fails t for a record whose window is not one aligned window.
func checkWindows(t testing.TB, recs []meter.Record, window time.Duration) {
	t.Helper()
	for _, rec := range recs {
		if rec.WindowStart.UnixNano()%int64(window) != 0 {
			t.Errorf("record %s starts at %v, not on a %v boundary", rec.ID, rec.WindowStart, window)
		}
		if d := rec.WindowEnd.Sub(rec.WindowStart); d != window {
			t.Errorf("record %s spans %v, want %v", rec.ID, d, window)
		}
	}
}

func TestAddSumsExactlyAcrossWindows(t *testing.T) {
	const goroutines, adds, tenants = 32, 10_000, 50
	clk := newClock(start)
	s := &sink{}
	r := newRecorder(t, clk, s, testMeters)

	ctxs := make([]context.Context, tenants)
	for i := range ctxs {
		ctxs[i] = tenantCtx(t, "tenant-"+strconv.Itoa(i))
	}
	regions, sizes := []string{"eu", "us"}, []string{"s", "m", "l"}
	// op is the i-th add of goroutine g.
	op := func(g, i int) (tn int, name string, dims []string, v float64) {
		tn = (g*adds + i) % tenants
		v = float64(1 + i%7)
		switch i % 3 {
		case 0:
			return tn, "api.calls", nil, v
		case 1:
			return tn, "storage.bytes", nil, v * 1024
		default:
			return tn, "jobs.run", []string{regions[i%2], sizes[(i/3)%3]}, v
		}
	}
	want := make(map[string]float64)
	for g := range goroutines {
		for i := range adds {
			tn, name, dims, v := op(g, i)
			rec := meter.Record{TenantID: "tenant-" + strconv.Itoa(tn), Meter: name}
			if dims != nil {
				rec.Dimensions = map[string]string{"region": dims[0], "size": dims[1]}
			}
			want[key(rec)] += v
		}
	}

	begin := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			<-begin
			for i := range adds {
				tn, name, dims, v := op(g, i)
				r.Add(ctxs[tn], name, v, dims...)
				// One goroutine moves time on while the others add: 20s
				// every 1000 adds, ten times, crossing three boundaries.
				if g == 0 && i%1000 == 999 {
					clk.Advance(20 * time.Second)
				}
			}
		})
	}
	close(begin)
	wg.Wait()

	ctx := context.Background()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for _, rec := range s.Records() {
		if rec.WindowEnd.After(clk.Now()) {
			t.Errorf("Flush delivered the open window %v-%v at %v", rec.WindowStart, rec.WindowEnd, clk.Now())
		}
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	got := s.Records()
	if diff := cmp.Diff(want, totals(got)); diff != "" {
		t.Errorf("delivered totals (-want +got):\n%s", diff)
	}
	checkOncePerID(t, got)
	checkWindows(t, got, meter.DefaultWindow)
	windows := make(map[time.Time]bool)
	for _, rec := range got {
		windows[rec.WindowStart] = true
	}
	if len(windows) < 4 {
		t.Errorf("records in %d windows, want at least 4 (200s of adds from noon)", len(windows))
	}
	st := r.Stats()
	if st.Delivered != int64(len(got)) || st.Pending != 0 || st.Retried != 0 {
		t.Errorf("Stats = %+v, want Delivered %d and nothing pending or retried", st, len(got))
	}
}

func TestFlushRacingAddsReportsEachWindowOnce(t *testing.T) {
	const goroutines, tenants, flushes = 8, 10, 100
	clk := newClock(start)
	s := &sink{}
	r := newRecorder(t, clk, s, testMeters)
	ctxs := make([]context.Context, tenants)
	for i := range ctxs {
		ctxs[i] = tenantCtx(t, "tenant-"+strconv.Itoa(i))
	}

	// The adders run until the flusher has closed 50 windows under them;
	// each counts what it added per tenant.
	ctx := context.Background()
	stop := make(chan struct{})
	var added atomic.Int64
	counts := make([][tenants]float64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := 0; ; i++ {
				if i%100 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
				tn := (g + i) % tenants
				r.Add(ctxs[tn], "api.calls", 1)
				counts[g][tn]++
				added.Add(1)
			}
		})
	}
	var flushErr error
	for range flushes {
		// Some adds in every half window.
		for from := added.Load(); added.Load() < from+100; {
			runtime.Gosched()
		}
		// Halfway through a window, then to the next boundary: every
		// other Flush closes a window that adds are still landing in.
		clk.Advance(30 * time.Second)
		if err := r.Flush(ctx); err != nil && flushErr == nil {
			flushErr = err
		}
	}
	close(stop)
	wg.Wait()
	if flushErr != nil {
		t.Fatalf("Flush: %v", flushErr)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	got := s.Records()
	checkOncePerID(t, got)
	checkWindows(t, got, meter.DefaultWindow)
	want := make(map[string]float64)
	for g := range goroutines {
		for tn, n := range counts[g] {
			if n > 0 {
				want[key(meter.Record{TenantID: "tenant-" + strconv.Itoa(tn), Meter: "api.calls"})] += n
			}
		}
	}
	if diff := cmp.Diff(want, totals(got)); diff != "" {
		t.Errorf("delivered totals (-want +got):\n%s", diff)
	}
	// Each (tenant, window) is one record: the same key twice in a window
	// would be a window reported twice under two IDs.
	seen := make(map[string]bool)
	windows := make(map[time.Time]bool)
	for _, rec := range got {
		k := key(rec) + "@" + rec.WindowStart.String()
		if seen[k] {
			t.Errorf("%s reported twice", k)
		}
		seen[k] = true
		windows[rec.WindowStart] = true
	}
	if len(windows) < flushes/2 {
		t.Errorf("records in %d windows, want at least %d", len(windows), flushes/2)
	}
}

func TestShutdownRacingAddsLosesNothing(t *testing.T) {
	const goroutines = 8
	clk := newClock(start)
	s := &sink{}
	r := newRecorder(t, clk, s, testMeters)
	ctx := tenantCtx(t, "acme")

	var calls atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.Add(ctx, "api.calls", 1)
				calls.Add(1)
			}
		})
	}
	for calls.Load() < 10_000 {
		// Let the adders run: no sleeping, only yielding.
		runtime.Gosched()
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	after := calls.Load()
	for calls.Load() < after+1000 {
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()

	var delivered float64
	for _, rec := range s.Records() {
		delivered += rec.Value
	}
	late := r.Stats().Late
	if late == 0 {
		t.Errorf("Stats.Late = 0 after 1000 adds past Shutdown")
	}
	if got, want := int64(delivered)+late, calls.Load(); got != want {
		t.Errorf("delivered %v + late %d = %d, want the %d adds made", delivered, late, got, want)
	}
}

func TestUnattributedUsageIsReported(t *testing.T) {
	clk := newClock(start.Add(10 * time.Second))
	s := &sink{}
	r := newRecorder(t, clk, s, testMeters)
	r.Add(context.Background(), "api.calls", 2)
	// A zero Tenant in the context names no tenant either.
	r.Add(tenant.NewContext(context.Background(), tenant.Tenant{}), "api.calls", 3)
	r.Add(tenantCtx(t, "acme"), "api.calls", 1)
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	want := []meter.Record{
		{TenantID: "", Unattributed: true, Meter: "api.calls", Value: 5, Unit: meter.UnitCount,
			WindowStart: start, WindowEnd: start.Add(time.Minute), Service: "orders", Instance: "i-1"},
		{TenantID: "acme", Tier: "basic", Meter: "api.calls", Value: 1, Unit: meter.UnitCount,
			WindowStart: start, WindowEnd: start.Add(time.Minute), Service: "orders", Instance: "i-1"},
	}
	got := s.Records()
	opts := cmp.Options{
		cmpopts.IgnoreFields(meter.Record{}, "ID"),
		cmpopts.SortSlices(func(a, b meter.Record) bool { return a.TenantID < b.TenantID }),
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	checkOncePerID(t, got)
}

func TestDimensionValuesAreBounded(t *testing.T) {
	clk := newClock(start)
	s := &sink{}
	r := newRecorder(t, clk, s, meter.WithMaxDimensionValues(3), meter.WithMeters(
		meter.Meter{Name: "api.calls", Dimensions: []string{"route"}},
		meter.Meter{Name: "jobs.run", Dimensions: []string{"region", "size"}},
	))
	ctx := tenantCtx(t, "acme")
	for i := range 10 {
		for range i + 1 {
			r.Add(ctx, "api.calls", 1, "/r"+strconv.Itoa(i))
		}
	}
	// The bound is per meter: jobs.run still has room.
	r.Add(ctx, "jobs.run", 5, "eu", "s")
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	want := map[string]float64{
		"acme|api.calls|route=/r0":               1,
		"acme|api.calls|route=/r1":               2,
		"acme|api.calls|route=/r2":               3,
		"acme|api.calls|route=" + meter.Overflow: 4 + 5 + 6 + 7 + 8 + 9 + 10,
		"acme|jobs.run|region=eu|size=s":         5,
	}
	if diff := cmp.Diff(want, totals(s.Records())); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

func TestUndeclaredMeters(t *testing.T) {
	clk := newClock(start)
	s := &sink{}
	logs := &logCapture{}
	r := newRecorder(t, clk, s, testMeters, meter.WithLogger(slog.New(logs)))
	ctx := tenantCtx(t, "acme")
	const names = 20
	for round := range 2 {
		for i := range names {
			r.Add(ctx, "custom."+strconv.Itoa(i), float64(round+1))
		}
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	want := make(map[string]float64)
	for i := range 16 {
		want["acme|custom."+strconv.Itoa(i)] = 3
	}
	want["acme|meter.undeclared"] = 3 * (names - 16)
	got := s.Records()
	if diff := cmp.Diff(want, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	for _, rec := range got {
		if rec.Unit != meter.UnitNone {
			t.Errorf("undeclared meter %s has unit %q, want %q", rec.Meter, rec.Unit, meter.UnitNone)
		}
	}

	// One warning per meter created, however often it is used.
	warned := make(map[string]int)
	for _, l := range logs.lines() {
		if l["level"] == "WARN" && strings.Contains(l["msg"], "not declared") {
			warned[l["meter"]]++
		}
	}
	wantWarned := make(map[string]int)
	for i := range 16 {
		wantWarned["custom."+strconv.Itoa(i)] = 1
	}
	wantWarned["meter.undeclared"] = 1
	if diff := cmp.Diff(wantWarned, warned); diff != "" {
		t.Errorf("warnings per meter (-want +got):\n%s", diff)
	}
}

func TestAddIgnoresWhatItCannotRecord(t *testing.T) {
	clk := newClock(start)
	s := &sink{}
	r := newRecorder(t, clk, s, testMeters)
	ctx := tenantCtx(t, "acme")
	r.Add(ctx, "api.calls", math.NaN())
	r.Add(ctx, "api.calls", math.Inf(1))
	r.Add(ctx, "api.calls", math.Inf(-1))
	r.Add(ctx, "api.calls", 0)
	r.Add(ctx, "storage.bytes", 0)
	r.Add(ctx, "api.calls", -2) // a correction is usage too
	r.Add(ctx, "api.calls", 5)
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	r.Add(ctx, "api.calls", 1)
	r.Add(ctx, "storage.bytes", 1)

	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 3}, totals(s.Records())); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	st := r.Stats()
	if st.Invalid != 3 || st.Late != 2 {
		t.Errorf("Stats = %+v, want Invalid 3 and Late 2", st)
	}

	var nilRec *meter.Recorder
	nilRec.Add(ctx, "api.calls", 1) // must not panic
}

func TestPackageAddFindsItsRecorder(t *testing.T) {
	clk := newClock(start)
	inCtx, byDefault := &sink{}, &sink{}
	r1 := newRecorder(t, clk, inCtx, testMeters)
	r2 := newRecorder(t, clk, byDefault, testMeters)
	t.Cleanup(func() { meter.SetDefault(nil) })

	ctx := tenantCtx(t, "acme")
	meter.Add(ctx, "api.calls", 100) // neither: nothing
	meter.SetDefault(r2)
	meter.Add(meter.NewContext(ctx, r1), "api.calls", 1)
	meter.Add(ctx, "api.calls", 10)
	meter.SetDefault(nil)
	meter.Add(ctx, "api.calls", 1000) // neither again

	if got, ok := meter.FromContext(meter.NewContext(ctx, r1)); !ok || got != r1 {
		t.Errorf("FromContext = %p, %v; want r1", got, ok)
	}
	if _, ok := meter.FromContext(ctx); ok {
		t.Errorf("FromContext of a context without a recorder reported one")
	}
	for _, r := range []*meter.Recorder{r1, r2} {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 1}, totals(inCtx.Records())); diff != "" {
		t.Errorf("the context's recorder (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 10}, totals(byDefault.Records())); diff != "" {
		t.Errorf("the default recorder (-want +got):\n%s", diff)
	}
}

func TestShutdownTwice(t *testing.T) {
	r := newRecorder(t, newClock(start), &sink{})
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := r.Shutdown(context.Background()); err == nil {
		t.Error("second Shutdown returned nil, want an error")
	}
}

func TestRecorderIDs(t *testing.T) {
	type scenario struct {
		service, instance string
		tenant            string // "" for unattributed
		meter             string
		dims              []string
		at                time.Time
	}
	base := scenario{"orders", "i-1", "acme", "jobs.run", []string{"eu", "s"}, start.Add(5 * time.Second)}
	idOf := func(t *testing.T, sc scenario) string {
		t.Helper()
		s := &sink{}
		r, err := meter.New(sc.service, s, testMeters, meter.WithoutLoop(), meter.WithInstance(sc.instance),
			meter.WithClock(func() time.Time { return sc.at }), meter.WithLogger(discard))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if sc.tenant != "" {
			ctx = tenantCtx(t, sc.tenant)
		}
		r.Add(ctx, sc.meter, 1, sc.dims...)
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		recs := s.Records()
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1", len(recs))
		}
		return recs[0].ID
	}
	baseID := idOf(t, base)
	if len(baseID) != 32 || strings.Trim(baseID, "0123456789abcdef") != "" {
		t.Errorf("ID %q is not 32 lower-case hex digits", baseID)
	}
	t.Run("same inputs, another recorder", func(t *testing.T) {
		sc := base
		sc.at = start.Add(50 * time.Second) // same window
		if id := idOf(t, sc); id != baseID {
			t.Errorf("ID = %s, want %s", id, baseID)
		}
	})
	variants := map[string]func(*scenario){
		"service":            func(s *scenario) { s.service = "billing" },
		"instance":           func(s *scenario) { s.instance = "i-2" },
		"tenant":             func(s *scenario) { s.tenant = "globex" },
		"unattributed":       func(s *scenario) { s.tenant = "" },
		"meter":              func(s *scenario) { s.meter = "api.calls"; s.dims = nil },
		"dimension":          func(s *scenario) { s.dims = []string{"eu", "m"} },
		"dimensions swapped": func(s *scenario) { s.dims = []string{"s", "eu"} },
		"window":             func(s *scenario) { s.at = base.at.Add(time.Minute) },
	}
	seen := map[string]string{baseID: "base"}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			sc := base
			change(&sc)
			id := idOf(t, sc)
			if other, dup := seen[id]; dup {
				t.Errorf("ID %s is also the ID of %s", id, other)
			}
			seen[id] = name
		})
	}
}

func TestRecordJSON(t *testing.T) {
	rec := meter.Record{
		ID: "0123456789abcdef0123456789abcdef", TenantID: "acme", Tier: "premium",
		Meter: "jobs.run", Value: 12.5, Unit: meter.UnitSeconds,
		WindowStart: start, WindowEnd: start.Add(time.Minute),
		Service: "orders", Instance: "i-1",
		Dimensions: map[string]string{"region": "eu", "size": "s"},
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back meter.Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	// The field names are the contract with the billing pipeline.
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": rec.ID, "tenant_id": "acme", "tier": "premium", "meter": "jobs.run", "value": 12.5,
		"unit": "Seconds", "window_start": "2026-03-14T12:00:00Z", "window_end": "2026-03-14T12:01:00Z",
		"service": "orders", "instance": "i-1", "dimensions": map[string]any{"region": "eu", "size": "s"},
	}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("JSON fields (-want +got):\n%s", diff)
	}
}
