package meter_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
)

// durableRecorder returns a Recorder like newRecorder's, of instance, with
// a spool at spool and checkpoints.
func durableRecorder(t testing.TB, clk *clock, s meter.Sink, spool, instance string, opts ...meter.Option) *meter.Recorder {
	t.Helper()
	base := []meter.Option{meter.WithoutLoop(), meter.WithClock(clk.Now), meter.WithInstance(instance), meter.WithLogger(discard),
		testMeters, meter.WithSpool(spool), meter.WithCheckpoint(time.Second)}
	r, err := meter.New("orders", s, append(base, opts...)...)
	if err != nil {
		t.Fatalf("meter.New: %v", err)
	}
	return r
}

// addSome adds the usage most tests here recover: on api.calls, jobs.run
// (with dimensions) and unattributed.
func addSome(t testing.TB, r *meter.Recorder) {
	r.Add(tenantCtx(t, "acme"), "api.calls", 3)
	r.Add(tenantCtx(t, "globex"), "jobs.run", 5, "eu", "s")
	r.Add(context.Background(), "api.calls", 2)
}

func TestCheckpointRecoversTheOpenWindows(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	at := start.Add(10 * time.Second)
	r1 := durableRecorder(t, newClock(at), &sink{}, spool, "i-1")
	addSome(t, r1)
	if err := r1.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r1.Add(tenantCtx(t, "acme"), "api.calls", 100) // after the last checkpoint: lost
	r1.Abandon()

	// What r1 would have delivered, had it lived: the same records, with
	// the same IDs.
	ref := &sink{}
	r0 := newRecorder(t, newClock(at), ref, testMeters)
	addSome(t, r0)
	if err := r0.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	s := &sink{}
	r2 := durableRecorder(t, newClock(at.Add(10*time.Second)), s, spool, "i-2")
	if st := r2.Stats(); st.Pending != 3 {
		t.Errorf("Stats after the restart = %+v, want the 3 recovered records pending", st)
	}
	r2.Add(tenantCtx(t, "acme"), "api.calls", 7) // the same window, another instance
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	checkOncePerID(t, got)
	var recovered []meter.Record
	for _, rec := range got {
		if rec.Instance == "i-1" {
			recovered = append(recovered, rec)
		}
	}
	if diff := cmp.Diff(ref.Records(), recovered, byID); diff != "" {
		t.Errorf("recovered records (-as r1 would have delivered them +recovered):\n%s", diff)
	}
	want := map[string]float64{"acme|api.calls": 3 + 7, "globex|jobs.run|region=eu|size=s": 5, "(unattributed)|api.calls": 2}
	if diff := cmp.Diff(want, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(spool + ".checkpoint"); err != nil {
		t.Errorf("no checkpoint after Shutdown: %v", err)
	}
}

// A process restarted with the same instance (a pod name) in the same
// window gives its own records of that window IDs of their own, after a
// crash and after a clean Shutdown.
func TestCheckpointSameInstanceKeepsIDsApart(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	s := &sink{}
	r1 := durableRecorder(t, newClock(start.Add(10*time.Second)), s, spool, "pod-0")
	r1.Add(tenantCtx(t, "acme"), "api.calls", 3)
	if err := r1.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r1.Abandon()

	r2 := durableRecorder(t, newClock(start.Add(20*time.Second)), s, spool, "pod-0")
	r2.Add(tenantCtx(t, "acme"), "api.calls", 7)
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r3 := durableRecorder(t, newClock(start.Add(30*time.Second)), s, spool, "pod-0")
	r3.Add(tenantCtx(t, "acme"), "api.calls", 11)
	if err := r3.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	got := s.Records()
	if len(got) != 3 {
		t.Fatalf("%d records, want 3 (one per process)", len(got))
	}
	checkOncePerID(t, got)
	checkWindows(t, got, meter.DefaultWindow)
	for _, rec := range got {
		if !rec.WindowStart.Equal(start) {
			t.Errorf("record of %v starts at %v, want the window of noon", rec.Value, rec.WindowStart)
		}
	}
	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 21}, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

// A crash after closed windows were written to the spool and before the
// checkpoint was written without them: both files hold those windows, and
// the next start delivers them once.
func TestCheckpointAndSpoolHoldingOneWindow(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	clk := newClock(start.Add(10 * time.Second))
	r1 := durableRecorder(t, clk, &sink{fail: func(int, []meter.Record) error { return errDown }}, spool, "i-1")
	r1.Add(tenantCtx(t, "acme"), "api.calls", 3)
	clk.Advance(time.Minute)
	r1.Add(tenantCtx(t, "acme"), "api.calls", 4) // the next window, open
	if err := r1.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(spool + ".checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	// The first window closes: to the spool, then a checkpoint without it.
	r1.Flush(context.Background())
	if n := len(readSpool(t, spool)); n != 1 {
		t.Fatalf("spool holds %d records, want the closed window's", n)
	}
	// The crash came before that checkpoint reached the disk.
	if err := os.WriteFile(spool+".checkpoint", before, 0o600); err != nil {
		t.Fatal(err)
	}
	r1.Abandon()

	s := &sink{}
	r2 := durableRecorder(t, newClock(start.Add(2*time.Minute)), s, spool, "i-2")
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	if len(got) != 2 {
		t.Errorf("%d records, want 2", len(got))
	}
	checkOncePerID(t, got)
	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 7}, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

func TestCheckpointItCannotReadIsMovedAside(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	r1 := durableRecorder(t, newClock(start), &sink{}, spool, "i-1")
	r1.Add(tenantCtx(t, "acme"), "api.calls", 3)
	if err := r1.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r1.Abandon()
	data, err := os.ReadFile(spool + ".checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	// Cut short, as no rename would leave it, but a disk might.
	if err := os.WriteFile(spool+".checkpoint", data[:len(data)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logCapture{}
	s := &sink{}
	r2 := durableRecorder(t, newClock(start.Add(time.Hour)), s, spool, "i-2", meter.WithLogger(slog.New(logs)))
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Records()); n != 0 {
		t.Errorf("%d records delivered from a checkpoint cut short, want none", n)
	}
	logged := false
	for _, l := range logs.lines() {
		if l["level"] == "ERROR" && l["moved_to"] == spool+".checkpoint.bad" && strings.Contains(l["error"], "cut short") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no error naming the file it was moved to; logged %v", logs.lines())
	}
	if got, err := os.ReadFile(spool + ".checkpoint.bad"); err != nil || len(got) != len(data)-5 {
		t.Errorf("%s.checkpoint.bad: %d bytes, %v; want the checkpoint as it was", spool, len(got), err)
	}
}

// On a full disk (a tmpfs), closed windows stay in memory and errors are
// logged; once there is room again, they reach the spool and a
// checkpoint, and a crash then loses nothing.
func TestCheckpointOnAFullDisk(t *testing.T) {
	dir := mountTmpfs(t, 256<<10)
	spool := filepath.Join(dir, "spool")
	filler := filepath.Join(dir, "filler")
	logs := &logCapture{}
	clk := newClock(start)
	down := &sink{fail: func(int, []meter.Record) error { return errDown }}
	r1 := durableRecorder(t, clk, down, spool, "i-1", meter.WithLogger(slog.New(logs)))
	want := map[string]float64{}
	add := func(w int) {
		for i := range 20 {
			id := "tenant-" + strconv.Itoa(i)
			r1.Add(tenantCtx(t, id), "api.calls", float64(w+1))
			want[id+"|api.calls"] += float64(w + 1)
		}
	}
	add(0)
	if err := r1.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	fillDisk(t, filler)

	clk.Advance(time.Minute)
	add(1)
	r1.Flush(context.Background()) // window 0 closes: no room for it
	if st := r1.Stats(); st.Pending != 20 {
		t.Errorf("Stats on a full disk = %+v, want window 0's 20 records pending, in memory", st)
	}
	if n := len(readSpool(t, spool)); n != 0 {
		t.Errorf("the spool holds %d records on a full disk", n)
	}
	if !hasLog(logs, "ERROR", "cannot write closed windows to the spool") {
		t.Errorf("no error logged for the spool; logged %v", logs.lines())
	}
	if _, err := os.Stat(spool + ".checkpoint"); !os.IsNotExist(err) {
		t.Errorf("a stale checkpoint was left (Stat: %v): it holds window 0, which is in memory now", err)
	}
	fillDisk(t, filler+"2") // what removing the checkpoint freed
	if err := r1.Checkpoint(); err == nil {
		t.Error("a checkpoint was written on a full disk")
	}
	if !hasLog(logs, "ERROR", "cannot write the checkpoint") {
		t.Errorf("no error logged for the checkpoint; logged %v", logs.lines())
	}

	for _, f := range []string{filler, filler + "2"} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	add(2)
	r1.Flush(context.Background()) // room again: windows 0 and 1 to the spool
	if err := r1.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint with room again: %v", err)
	}
	if !hasLog(logs, "WARN", "checkpoint written again") {
		t.Errorf("no word that checkpoints are written again; logged %v", logs.lines())
	}
	r1.Abandon()

	s := &sink{}
	r2 := durableRecorder(t, newClock(start.Add(time.Hour)), s, spool, "i-2")
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	checkOncePerID(t, got)
	if diff := cmp.Diff(want, totals(got)); diff != "" {
		t.Errorf("delivered after the crash (-want +got):\n%s", diff)
	}
}

// fillDisk writes a file at path until the disk is full.
func fillDisk(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// hasLog reports whether logs hold a line of level whose message holds
// msg.
func hasLog(logs *logCapture, level, msg string) bool {
	for _, l := range logs.lines() {
		if l["level"] == level && strings.Contains(l["msg"], msg) {
			return true
		}
	}
	return false
}

// Temporary files a crash left in the middle of a checkpoint or a rewrite
// of the spool are removed by the next start.
func TestStaleTemporaryFilesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	stale := []string{"spool.tmp123", "spool.checkpoint.tmp456"}
	kept := []string{"spool.bad", "other.tmp1", "spool.lock"}
	for _, name := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := durableRecorder(t, newClock(start), &sink{}, spool, "i-1")
	defer r.Shutdown(context.Background())
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (Stat: %v)", name, err)
		}
	}
	for _, name := range kept {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
}

// A checkpoint that takes longer than its interval is logged once while
// it lasts: the bound no longer holds.
func TestSlowCheckpointIsLogged(t *testing.T) {
	logs := &logCapture{}
	clk := newClock(start)
	// While slow, every reading of the clock is a second after the last:
	// each checkpoint takes a second, its interval 10 ms.
	var slow atomic.Bool
	now := func() time.Time {
		if slow.Load() {
			clk.Advance(time.Second)
		}
		return clk.Now()
	}
	r, err := meter.New("orders", &sink{}, meter.WithoutLoop(), meter.WithClock(now), meter.WithInstance("i-1"),
		testMeters, meter.WithSpool(filepath.Join(t.TempDir(), "spool")), meter.WithCheckpoint(10*time.Millisecond),
		meter.WithLogger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	checkpoint := func() {
		r.Add(tenantCtx(t, "acme"), "api.calls", 1) // something to write
		slow.Store(true)
		defer slow.Store(false)
		if err := r.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	warnings := func() int {
		n := 0
		for _, l := range logs.lines() {
			if l["level"] == "WARN" && strings.Contains(l["msg"], "took longer than its interval") && l["took"] == "1s" {
				n++
			}
		}
		return n
	}
	checkpoint()
	checkpoint()
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings for two slow checkpoints in a row, want 1; logged %v", n, logs.lines())
	}
	r.Add(tenantCtx(t, "acme"), "api.calls", 1)
	if err := r.Checkpoint(); err != nil { // on time
		t.Fatal(err)
	}
	checkpoint()
	if n := warnings(); n != 2 {
		t.Errorf("%d warnings after a slow one, one on time and a slow one, want 2", n)
	}
}
