package meter_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
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
	onDisk := readSpool(t, spool)
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
	r2.Abandon()
	again := &sink{}
	r3 := newRecorder(t, newClock(start.Add(2*time.Hour)), again, testMeters, meter.WithSpool(spool))
	if st := r3.Stats(); st.Pending != 0 {
		t.Errorf("Stats after the crash = %+v, want nothing pending", st)
	}
	if err := r3.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
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
	if st := r2.Stats(); st.Spooled != 1 || st.Pending != 2 {
		t.Errorf("Stats = %+v, want Spooled 1, Pending 2 (in the spool)", st)
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

// Lines as the spool holds them: one of version 1, one of the first
// release (a bare record), each a record of 1 on api.calls.
const (
	goodV1Line     = `{"v":1,"record":{"id":"0123456789abcdef0123456789abcdef","tenant_id":"acme","meter":"api.calls","value":1,"unit":"Count","window_start":"2026-03-14T12:00:00Z","window_end":"2026-03-14T12:01:00Z","service":"orders"}}`
	goodLegacyLine = `{"id":"fedcba9876543210fedcba9876543210","tenant_id":"globex","meter":"api.calls","value":1,"unit":"Count","window_start":"2026-03-14T12:00:00Z","window_end":"2026-03-14T12:01:00Z","service":"orders"}`
)

// A line the spool cannot read is moved to <spool>.bad with a warning
// naming it and why; New goes on with the others.
func TestSpoolLinesItCannotReadAreQuarantined(t *testing.T) {
	tests := []struct {
		name, line, why string
		last            bool // the bad line ends the file, without a newline
	}{
		{name: "not JSON", line: `{not json`, why: "not a JSON object"},
		{name: "a bare record without an id", line: `{"tenant_id":"acme","meter":"api.calls","value":1}`, why: "without an id"},
		{name: "version 2", line: strings.Replace(goodV1Line, `"v":1`, `"v":2`, 1), why: "version 2"},
		{name: "version 2 of another shape", line: `{"v":2,"id":"0123456789abcdef0123456789abcdef","tenant_id":"acme","meter":"api.calls","amount":5}`, why: "version 2"},
		{name: "an unknown field in a record", line: strings.Replace(goodV1Line, `"value":1`, `"value":1,"amount":5`, 1), why: `unknown field "amount"`},
		{name: "an unknown field in a bare record", line: strings.Replace(goodLegacyLine, `"value":1`, `"amount":5`, 1), why: `unknown field "amount"`},
		{name: "an unknown field beside the record", line: strings.Replace(goodV1Line, `"v":1`, `"v":1,"checksum":"x"`, 1), why: `unknown field "checksum"`},
		{name: "both a record and delivered_to", line: strings.Replace(goodV1Line, `"v":1`, `"v":1,"delivered_to":0`, 1), why: "one of"},
		{name: "a line cut short by a crash", line: goodV1Line[:40], why: "not a JSON object", last: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			spool := filepath.Join(dir, "spool")
			content := goodV1Line + "\n" + tt.line + "\n" + goodLegacyLine + "\n"
			badLine := 2
			if tt.last {
				content = goodV1Line + "\n" + goodLegacyLine + "\n" + tt.line
				badLine = 3
			}
			if err := os.WriteFile(spool, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &logCapture{}
			s := &sink{}
			r := newRecorder(t, newClock(start.Add(time.Hour)), s, testMeters, meter.WithSpool(spool), meter.WithLogger(slog.New(logs)))
			if st := r.Stats(); st.Pending != 2 {
				t.Errorf("Stats = %+v, want the 2 good records pending", st)
			}
			warned := false
			for _, l := range logs.lines() {
				if l["level"] == "WARN" && l["spool"] == spool && l["line"] == strconv.Itoa(badLine) &&
					l["moved_to"] == spool+".bad" && strings.Contains(l["error"], tt.why) {
					warned = true
				}
			}
			if !warned {
				t.Errorf("no warning naming the spool, line %d and %q; logged %v", badLine, tt.why, logs.lines())
			}
			side, err := os.ReadFile(spool + ".bad")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(side), tt.line+"\n"; got != want {
				t.Errorf("%s.bad = %q, want the bad line %q", spool, got, want)
			}
			// The spool was rewritten without it: the next start reads
			// it without a warning.
			if recs := readSpool(t, spool); len(recs) != 2 {
				t.Errorf("the spool holds %d records, want 2", len(recs))
			}
			if err := r.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := s.Records()
			checkOncePerID(t, got)
			if diff := cmp.Diff(map[string]float64{"acme|api.calls": 1, "globex|api.calls": 1}, totals(got)); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			checkNoFile(t, spool)
		})
	}
}

// Two Recorders never share a spool: the second New fails naming it, and
// the first one's records stay where they are.
func TestSpoolInUseByAnotherRecorder(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	down, ctx, arm := downUntilShutdownGivesUp()
	clk := newClock(start)
	r1 := newRecorder(t, clk, down, testMeters, meter.WithSpool(spool), meter.WithBackoff(time.Millisecond, time.Millisecond))
	r1.Add(tenantCtx(t, "acme"), "api.calls", 1)
	clk.Advance(time.Minute)
	r1.Flush(context.Background()) // spooled: the sink is down
	if n := len(readSpool(t, spool)); n != 1 {
		t.Fatalf("spool holds %d records, want 1", n)
	}

	r2, err := meter.New("orders", &sink{}, meter.WithoutLoop(), meter.WithSpool(spool), meter.WithLogger(discard))
	if err == nil {
		r2.Shutdown(context.Background())
		t.Fatal("a second Recorder opened a spool in use")
	}
	if !strings.HasPrefix(err.Error(), "meter: WithSpool: ") || !strings.Contains(err.Error(), spool+" is in use") {
		t.Errorf("New error = %q, want it to name the spool in use", err)
	}
	if n := len(readSpool(t, spool)); n != 1 {
		t.Errorf("spool holds %d records after the second New, want 1", n)
	}

	arm()
	if err := r1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Released by Shutdown: the next start takes it, and its records.
	s := &sink{}
	r3 := newRecorder(t, newClock(start.Add(time.Hour)), s, testMeters, meter.WithSpool(spool))
	if err := r3.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 1}, totals(s.Records())); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

// A line of more than 1 MiB, written by the library, is read back.
func TestSpoolReadsBackALongLine(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	name := "custom." + strings.Repeat("x", 3<<19) // 1.5 MiB: a meter named by unbounded input
	down, ctx, arm := downUntilShutdownGivesUp()
	r1 := newRecorder(t, newClock(start), down, testMeters, meter.WithSpool(spool), meter.WithBackoff(time.Millisecond, time.Millisecond))
	r1.Add(tenantCtx(t, "acme"), name, 2)
	arm()
	if err := r1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(spool); err != nil || fi.Size() < 3<<19 {
		t.Fatalf("spool: %v, want a file of more than 1.5 MiB", err)
	}
	s := &sink{}
	r2 := newRecorder(t, newClock(start.Add(time.Hour)), s, testMeters, meter.WithSpool(spool))
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	if len(got) != 1 || got[0].Meter != name || got[0].Value != 2 {
		t.Fatalf("delivered %d records, want the one of 2 on the long meter name", len(got))
	}
}

// While the sink is down, every record it did not take is written to the
// spool at once, and memory holds at most WithMaxPending of them; they are
// delivered, once each, after it recovers, and the spool is removed.
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
	r := newRecorder(t, clk, s, testMeters, meter.WithSpool(spool), meter.WithMaxPending(3), meter.WithBatchSize(2))
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
		if n := r.InMemory(); n > 3 {
			t.Fatalf("window %d: %d records in memory, want at most WithMaxPending (3)", w, n)
		}
	}
	if st := r.Stats(); st.Pending != 12 || st.Spooled != 12 || st.Dropped != 0 {
		t.Fatalf("Stats while down = %+v, want 12 pending, all spooled, none dropped", st)
	}
	if n := len(readSpool(t, spool)); n != 12 {
		t.Fatalf("spool holds %d records, want 12", n)
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
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Without a spool, memory holds at most WithMaxPending records while the
// sink is down: the oldest past it are dropped, counted and logged.
func TestPendingIsBoundedWithoutASpool(t *testing.T) {
	var up atomic.Bool
	s := &sink{fail: func(int, []meter.Record) error {
		if up.Load() {
			return nil
		}
		return errDown
	}}
	clk := newClock(start)
	logs := &logCapture{}
	r := newRecorder(t, clk, s, testMeters, meter.WithMaxPending(3), meter.WithLogger(slog.New(logs)))
	for w := range 3 {
		for i := range 2 {
			r.Add(tenantCtx(t, "t"+strconv.Itoa(i)), "api.calls", float64(w+1))
		}
		clk.Advance(time.Minute)
		r.Flush(context.Background())
	}
	if st := r.Stats(); st.Pending != 3 || st.Dropped != 3 {
		t.Fatalf("Stats while down = %+v, want 3 pending and 3 dropped", st)
	}
	up.Store(true)
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The newest three: the third window, and one of the second.
	var sum float64
	for _, rec := range s.Records() {
		sum += rec.Value
	}
	if sum != 3+3+2 {
		t.Errorf("delivered %v in all, want 8 (the newest three records)", sum)
	}
	errorsLogged := 0
	for _, l := range logs.lines() {
		if l["level"] == "ERROR" && strings.Contains(l["msg"], "dropped") {
			errorsLogged++
		}
	}
	if errorsLogged == 0 {
		t.Error("records were dropped without an error in the log")
	}
}
