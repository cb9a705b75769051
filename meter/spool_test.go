package meter_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tenancykit/tenancy/meter"
)

var byID = cmpopts.SortSlices(func(a, b meter.Record) bool { return a.ID < b.ID })

// downUntilShutdownGivesUp is a sink that always fails and, on its third
// call from Shutdown, cancels the context given to Shutdown: the deadline
// passing while the sink is down.
func downUntilShutdownGivesUp() (*sink, context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sink{}
	arm := func() {
		s.mu.Lock()
		from := s.calls
		s.fail = func(call int, _ []meter.Record) error {
			if call >= from+3 {
				cancel()
			}
			return errDown
		}
		s.mu.Unlock()
	}
	s.fail = func(int, []meter.Record) error { return errDown }
	return s, ctx, arm
}

func checkNoFile(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("spool file still there (Stat: %v)", err)
	}
}

func TestShutdownSpoolsAndNextStartDeliversOnce(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	clk := newClock(start)
	down, shutdownCtx, arm := downUntilShutdownGivesUp()
	r := newRecorder(t, clk, down, testMeters, meter.WithSpool(spool),
		meter.WithBackoff(time.Millisecond, time.Millisecond))
	for i := range 3 {
		r.Add(tenantCtx(t, "t"+strconv.Itoa(i)), "api.calls", float64(i+1))
	}
	clk.Advance(time.Minute)
	if err := r.Flush(context.Background()); !errors.Is(err, errDown) {
		t.Fatalf("Flush = %v, want %v", err, errDown)
	}
	// Two more records in the open window.
	r.Add(tenantCtx(t, "t0"), "api.calls", 10)
	r.Add(tenantCtx(t, "t0"), "jobs.run", 7, "eu", "s")
	arm()
	if err := r.Shutdown(shutdownCtx); err != nil {
		t.Fatalf("Shutdown with a spool: %v", err)
	}
	if st := r.Stats(); st.Spooled != 5 || st.Delivered != 0 {
		t.Errorf("Stats = %+v, want Spooled 5, Delivered 0", st)
	}
	if n := down.Calls(); n < 4 {
		t.Errorf("sink called %d times, want Shutdown to have retried (at least 4 calls)", n)
	}
	onDisk := readLines(t, spool)
	var tried []meter.Record
	for _, b := range down.Batches() {
		tried = append(tried, b...)
	}
	slices.SortFunc(tried, func(a, b meter.Record) int { return strings.Compare(a.ID, b.ID) })
	tried = slices.CompactFunc(tried, func(a, b meter.Record) bool { return a.ID == b.ID })
	if diff := cmp.Diff(tried, onDisk, byID); diff != "" {
		t.Errorf("spool file (-the records tried +spooled):\n%s", diff)
	}

	// The next start delivers them at its first Flush, once, and removes
	// the file.
	next := &sink{}
	r2 := newRecorder(t, newClock(start.Add(time.Hour)), next, testMeters, meter.WithSpool(spool))
	if st := r2.Stats(); st.Pending != 5 {
		t.Errorf("Stats of the next start = %+v, want Pending 5", st)
	}
	if err := r2.Flush(context.Background()); err != nil {
		t.Fatalf("Flush of the next start: %v", err)
	}
	if diff := cmp.Diff(onDisk, next.Records(), byID); diff != "" {
		t.Errorf("delivered at the next start (-spooled +delivered):\n%s", diff)
	}
	checkNoFile(t, spool)
	want := map[string]float64{"t0|api.calls": 11, "t1|api.calls": 2, "t2|api.calls": 3, "t0|jobs.run|region=eu|size=s": 7}
	if diff := cmp.Diff(want, totals(next.Records())); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}

	// A crash now, before r2 shuts down: the start after it finds no spool
	// and delivers nothing again.
	again := &sink{}
	r3 := newRecorder(t, newClock(start.Add(2*time.Hour)), again, testMeters, meter.WithSpool(spool))
	if st := r3.Stats(); st.Pending != 0 {
		t.Errorf("Stats after the crash = %+v, want nothing pending", st)
	}
	for _, r := range []*meter.Recorder{r3, r2} {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	if n := again.Calls(); n != 0 {
		t.Errorf("the start after the crash wrote %d batches, want none", n)
	}
	checkOncePerID(t, append(next.Records(), again.Records()...))
}

func TestSpooledRecordsAreSpooledAgain(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	first, ctx1, arm1 := downUntilShutdownGivesUp()
	r1 := newRecorder(t, newClock(start), first, testMeters, meter.WithSpool(spool), meter.WithBackoff(time.Millisecond, time.Millisecond))
	r1.Add(tenantCtx(t, "acme"), "api.calls", 1)
	arm1()
	if err := r1.Shutdown(ctx1); err != nil {
		t.Fatal(err)
	}

	// The sink is still down at the next start: its own usage and the
	// spooled record go back to the spool.
	second, ctx2, arm2 := downUntilShutdownGivesUp()
	r2 := newRecorder(t, newClock(start.Add(time.Hour)), second, testMeters, meter.WithSpool(spool), meter.WithBackoff(time.Millisecond, time.Millisecond))
	r2.Add(tenantCtx(t, "acme"), "api.calls", 2)
	arm2()
	if err := r2.Shutdown(ctx2); err != nil {
		t.Fatal(err)
	}
	// The spooled record never left the file: only r2's own is written.
	if st := r2.Stats(); st.Spooled != 1 || st.Pending != 0 {
		t.Errorf("Stats = %+v, want Spooled 1, Pending 0", st)
	}

	third := &sink{}
	r3 := newRecorder(t, newClock(start.Add(2*time.Hour)), third, testMeters, meter.WithSpool(spool))
	if err := r3.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := third.Records()
	if len(got) != 2 {
		t.Fatalf("delivered %d records, want 2", len(got))
	}
	checkOncePerID(t, got)
	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 3}, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	checkNoFile(t, spool)
}

func TestShutdownReportsWhatItCouldNotKeep(t *testing.T) {
	tests := []struct {
		name  string
		spool bool
	}{
		{"no spool", false},
		{"spool directory removed while running", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ctx, arm := downUntilShutdownGivesUp()
			opts := []meter.Option{meter.WithBackoff(time.Millisecond, time.Millisecond)}
			dir := filepath.Join(t.TempDir(), "spool.d")
			if tt.spool {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				opts = append(opts, meter.WithSpool(filepath.Join(dir, "spool")))
			}
			r := newRecorder(t, newClock(start), s, append(opts, testMeters)...)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			r.Add(tenantCtx(t, "acme"), "api.calls", 1)
			r.Add(tenantCtx(t, "globex"), "api.calls", 1)
			arm()
			err := r.Shutdown(ctx)
			if !errors.Is(err, meter.ErrUndelivered) {
				t.Fatalf("Shutdown = %v, want an error wrapping ErrUndelivered", err)
			}
			if !strings.Contains(err.Error(), "2 records") {
				t.Errorf("Shutdown error %q does not say how many records", err)
			}
			if st := r.Stats(); st.Spooled != 0 {
				t.Errorf("Stats = %+v, want nothing spooled", st)
			}
		})
	}
}

func TestCorruptSpoolFailsNew(t *testing.T) {
	good := `{"id":"0123456789abcdef0123456789abcdef","tenant_id":"acme","meter":"api.calls","value":1,"unit":"Count","window_start":"2026-03-14T12:00:00Z","window_end":"2026-03-14T12:01:00Z","service":"orders"}`
	tests := []struct {
		name, content, line string
	}{
		{"not JSON", good + "\n{not json\n", "line 2"},
		{"no id", good + "\n\n" + `{"tenant_id":"acme"}` + "\n", "line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spool := filepath.Join(t.TempDir(), "spool")
			if err := os.WriteFile(spool, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := meter.New("orders", &sink{}, meter.WithoutLoop(), meter.WithSpool(spool))
			if err == nil {
				r.Shutdown(context.Background())
				t.Fatal("New succeeded on a corrupt spool")
			}
			if !strings.Contains(err.Error(), spool) || !strings.Contains(err.Error(), tt.line) {
				t.Errorf("New error %q does not name the file and %s", err, tt.line)
			}
		})
	}
}

// While the sink is down, memory holds at most WithMaxPending records; the
// rest wait in the spool and are delivered, once each, after it recovers.
func TestPendingSpillsToTheSpool(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	var up atomic.Bool
	s := &sink{fail: func(int, []meter.Record) error {
		if up.Load() {
			return nil
		}
		return errDown
	}}
	clk := newClock(start)
	r := newRecorder(t, clk, s, testMeters, meter.WithSpool(spool), meter.WithMaxPending(3))
	want := map[string]float64{}
	for w := range 6 {
		for i := range 2 {
			id := "t" + strconv.Itoa(i)
			r.Add(tenantCtx(t, id), "api.calls", float64(w+1))
			want[id+"|api.calls"] += float64(w + 1)
		}
		clk.Advance(time.Minute)
		if err := r.Flush(context.Background()); !errors.Is(err, errDown) {
			t.Fatalf("window %d: Flush = %v", w, err)
		}
	}
	if st := r.Stats(); st.Pending != 12 || st.Spooled != 9 {
		t.Fatalf("Stats while down = %+v, want 12 pending of which 9 spilled", st)
	}
	if n := len(readLines(t, spool)); n != 9 {
		t.Fatalf("spool holds %d records, want the 9 past the cap of 3", n)
	}
	up.Store(true)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatalf("Flush after recovery: %v", err)
	}
	got := s.Records()
	checkOncePerID(t, got)
	if diff := cmp.Diff(want, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	checkNoFile(t, spool)
	if st := r.Stats(); st.Pending != 0 {
		t.Errorf("Stats after recovery = %+v", st)
	}
}
