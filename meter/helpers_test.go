package meter_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

// start is the simulated time most tests begin at: noon UTC, on a window
// boundary of every window size.
var start = time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)

// clock is a manual time source for meter.WithClock, safe for concurrent
// use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var tiers = tenant.DefaultTiers

func mustTenant(t testing.TB, id, tier string) tenant.Tenant {
	t.Helper()
	tn, err := tenant.New(id, tiers.MustLookup(tier))
	if err != nil {
		t.Fatalf("tenant.New(%q): %v", id, err)
	}
	return tn
}

// tenantCtx returns a context carrying a tenant on the basic tier.
func tenantCtx(t testing.TB, id string) context.Context {
	t.Helper()
	return tenant.NewContext(context.Background(), mustTenant(t, id, "basic"))
}

// sink records what it accepted. Its fail hook, when set, is asked first
// for every Write: a non-nil error is returned as is and, unless it is a
// *meter.DeliveryError (then all but the records it names), nothing of
// the batch is accepted.
type sink struct {
	mu       sync.Mutex
	fail     func(call int, records []meter.Record) error
	calls    int
	batches  [][]meter.Record // every batch given to Write, accepted or not
	accepted []meter.Record
}

func (s *sink) Write(_ context.Context, records []meter.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.batches = append(s.batches, slices.Clone(records))
	var err error
	if s.fail != nil {
		err = s.fail(s.calls, records)
	}
	var de *meter.DeliveryError
	switch {
	case err == nil:
		s.accepted = append(s.accepted, records...)
	case errors.As(err, &de):
		for i, rec := range records {
			rejected := slices.ContainsFunc(de.Rejected, func(r meter.RejectedRecord) bool { return r.Index == i })
			if !slices.Contains(de.Failed, i) && !rejected {
				s.accepted = append(s.accepted, rec)
			}
		}
	}
	return err
}

func (s *sink) Records() []meter.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

func (s *sink) Batches() [][]meter.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

func (s *sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

var errDown = errors.New("sink down")

// newRecorder returns a Recorder for service "orders", instance "i-1",
// without a delivery loop, on clk.
func newRecorder(t testing.TB, clk *clock, s meter.Sink, opts ...meter.Option) *meter.Recorder {
	t.Helper()
	base := []meter.Option{meter.WithoutLoop(), meter.WithClock(clk.Now), meter.WithInstance("i-1"), meter.WithLogger(discard)}
	r, err := meter.New("orders", s, append(base, opts...)...)
	if err != nil {
		t.Fatalf("meter.New: %v", err)
	}
	return r
}

var discard = slog.New(slog.DiscardHandler)

// key names what a record aggregates, without its window.
func key(rec meter.Record) string {
	var b strings.Builder
	if rec.Unattributed {
		b.WriteString("(unattributed)")
	}
	b.WriteString(rec.TenantID)
	b.WriteString("|")
	b.WriteString(rec.Meter)
	dims := make([]string, 0, len(rec.Dimensions))
	for k, v := range rec.Dimensions {
		dims = append(dims, k+"="+v)
	}
	sort.Strings(dims)
	for _, d := range dims {
		b.WriteString("|")
		b.WriteString(d)
	}
	return b.String()
}

// totals sums the values of records by key.
func totals(recs []meter.Record) map[string]float64 {
	out := make(map[string]float64)
	for _, rec := range recs {
		out[key(rec)] += rec.Value
	}
	return out
}

// idCounts counts the records of each ID.
func idCounts(recs []meter.Record) map[string]int {
	out := make(map[string]int)
	for _, rec := range recs {
		out[rec.ID]++
	}
	return out
}

// checkOncePerID fails t for every ID that recs hold more than once.
func checkOncePerID(t testing.TB, recs []meter.Record) {
	t.Helper()
	for id, n := range idCounts(recs) {
		if n != 1 {
			t.Errorf("record %s delivered %d times, want once", id, n)
		}
	}
}

// readLines parses every line of the file at path as a Record.
func readLines(t testing.TB, path string) []meter.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []meter.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec meter.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d of %s: %v", len(out)+1, path, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readSpool returns the undelivered records of the spool file at path.
func readSpool(t testing.TB, path string) []meter.Record {
	t.Helper()
	recs, err := meter.ReadSpool(path)
	if err != nil {
		t.Fatalf("reading the spool %s: %v", path, err)
	}
	return recs
}

// logCapture is a slog.Handler keeping every record, for WithLogger.
type logCapture struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCapture) WithGroup(string) slog.Handler            { return h }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}

// lines returns the level, message and attributes of each record, as
// strings.
func (h *logCapture) lines() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.records {
		m := map[string]string{"level": r.Level.String(), "msg": r.Message}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = fmt.Sprint(a.Value.Any())
			return true
		})
		out = append(out, m)
	}
	return out
}
