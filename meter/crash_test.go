package meter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/crashtest"
	"github.com/tenancykit/tenancy/meter"
)

// crashBound is what WithCheckpoint's doc promises with the default
// interval, rounded up: nothing added more than this before a kill -9 is
// lost.
const crashBound = time.Second

// crashConfig is the configuration of the process killed and of the one
// started after it, as a service would have it, with the window given.
// out is the JSON-lines file its sink writes; every fifth Write fails, so
// that records also wait in the spool.
func crashConfig(t testing.TB, dir string, window time.Duration, out string) (*meter.Recorder, func()) {
	t.Helper()
	file, err := meter.OpenJSONLines(filepath.Join(dir, out))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	flaky := meter.SinkFunc(func(ctx context.Context, recs []meter.Record) error {
		if calls.Add(1)%5 == 0 {
			return errDown
		}
		return file.Write(ctx, recs)
	})
	r, err := meter.New("orders", flaky, testMeters,
		meter.WithWindow(window), meter.WithBatchSize(7),
		meter.WithBackoff(10*time.Millisecond, 50*time.Millisecond),
		meter.WithSpool(filepath.Join(dir, "spool")), meter.WithCheckpoint(0),
		meter.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	return r, func() { file.Close() }
}

// runAdder is the child of TestKill9LosesAtMostTheBound: it adds 1 to
// api.calls of one of 20 tenants every millisecond and reports, after each
// add, how many it made and when, until it is killed.
func runAdder(t *testing.T) {
	window, err := time.ParseDuration(os.Getenv("METER_CRASH_WINDOW"))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := crashConfig(t, os.Getenv("METER_CRASH_DIR"), window, "delivered-1.jsonl")
	ctxs := make([]context.Context, 20)
	for i := range ctxs {
		ctxs[i] = tenantCtx(t, "tenant-"+strconv.Itoa(i))
	}
	tick := time.NewTicker(time.Millisecond)
	began := time.Now()
	for n := 1; ; n++ {
		<-tick.C
		r.Add(ctxs[n%len(ctxs)], "api.calls", 1)
		crashtest.Report(strconv.Itoa(n) + " " + strconv.FormatInt(int64(time.Since(began)), 10))
	}
}

// TestKill9LosesAtMostTheBound kills with SIGKILL a process that adds
// usage at a steady pace, at a random moment 1.5 to 3 seconds in, then
// starts the same configuration again: what the two processes delivered,
// counted once per ID, is at least what the killed one had added a second
// before the kill, and at most what it added in all. On one-second
// windows, the kill comes while windows close, checkpoints are written and
// records delivered from the spool past a failing sink; on hour-long ones,
// no window closes before the kill, and only the checkpoints hold the
// usage.
func TestKill9LosesAtMostTheBound(t *testing.T) {
	if crashtest.Mode() == "meter-adder" {
		runAdder(t)
	}
	for _, window := range []time.Duration{time.Second, time.Hour} {
		t.Run("window "+window.String(), func(t *testing.T) { testKill9(t, window) })
	}
}

func testKill9(t *testing.T, window time.Duration) {
	dir := t.TempDir()
	child := crashtest.Start(t, "meter-adder", "METER_CRASH_DIR="+dir, "METER_CRASH_WINDOW="+window.String())
	type progress struct {
		added int
		at    time.Duration // since the child began adding, on its clock
	}
	var reports []progress
	read := func(line string) {
		var p progress
		if _, err := fmt.Sscan(line, &p.added, &p.at); err != nil {
			t.Fatalf("child reported %q: %v", line, err)
		}
		reports = append(reports, p)
	}
	killAt := 1500 + rand.IntN(1500)
	for len(reports) == 0 || reports[len(reports)-1].added < killAt {
		line, ok := child.Next()
		if !ok {
			t.Fatalf("the child exited before it was killed:\n%s", child.Stderr())
		}
		read(line)
	}
	child.Kill()
	for line, ok := child.Next(); ok; line, ok = child.Next() {
		read(line) // reported before the kill
	}
	last := reports[len(reports)-1]
	// Adds reported crashBound before the last report were made at least
	// that long before the kill.
	mustKeep := 0
	for _, p := range reports {
		if p.at <= last.at-crashBound {
			mustKeep = p.added
		}
	}

	r, closeSink := crashConfig(t, dir, window, "delivered-2.jsonl")
	recovered := r.Stats().Pending
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for r.Stats().Pending > 0 && ctx.Err() == nil {
		r.Flush(ctx) // the sink fails one Write in five
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	closeSink()

	delivered := 0.0
	byID := map[string]meter.Record{}
	for _, out := range []string{"delivered-1.jsonl", "delivered-2.jsonl"} {
		for _, rec := range readDelivered(t, filepath.Join(dir, out)) {
			if prev, dup := byID[rec.ID]; dup {
				if prev.Value != rec.Value {
					t.Errorf("record %s delivered twice, with %v then %v", rec.ID, prev.Value, rec.Value)
				}
				continue
			}
			byID[rec.ID] = rec
			delivered += rec.Value
		}
	}
	t.Logf("added %d (%d of them %v before the kill), delivered %v: lost %v; %d records recovered at the restart",
		last.added, mustKeep, crashBound, delivered, float64(last.added)-delivered, recovered)
	if recovered == 0 {
		t.Error("nothing recovered at the restart: the kill found no open window")
	}
	if delivered < float64(mustKeep) {
		t.Errorf("delivered %v, want at least the %d adds made %v before the kill", delivered, mustKeep, crashBound)
	}
	// The child may have added once more after its last report.
	if delivered > float64(last.added+1) {
		t.Errorf("delivered %v, more than the %d added", delivered, last.added)
	}
}

// readDelivered parses the JSON lines at path. The process killed may
// have been cut in the middle of the last one: a last line without a
// newline is left out (its record was not delivered, and is sent again).
func readDelivered(t testing.TB, path string) []meter.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		data = data[:i+1]
	}
	var out []meter.Record
	for line := range bytes.Lines(data) {
		var rec meter.Record
		if err := json.Unmarshal(line, &rec); err != nil || rec.ID == "" {
			t.Fatalf("%s: a line that is not a record: %q", path, line)
		}
		out = append(out, rec)
	}
	return out
}

// TestSpoolLockedByAnotherProcess: while a process holds the spool (a
// rolling deploy on a shared volume), New in another fails naming it; once
// that process is killed, the lock goes with it and New succeeds.
func TestSpoolLockedByAnotherProcess(t *testing.T) {
	if crashtest.Mode() == "meter-holder" {
		_, err := meter.New("orders", &sink{}, meter.WithSpool(os.Getenv("METER_SPOOL")), meter.WithLogger(discard))
		if err != nil {
			crashtest.Report("error " + err.Error())
			select {}
		}
		crashtest.Report("holding")
		select {}
	}
	spool := filepath.Join(t.TempDir(), "spool")
	child := crashtest.Start(t, "meter-holder", "METER_SPOOL="+spool)
	if line, ok := child.Next(); line != "holding" {
		t.Fatalf("the child said %q (running: %v):\n%s", line, ok, child.Stderr())
	}
	r, err := meter.New("orders", &sink{}, meter.WithoutLoop(), meter.WithSpool(spool), meter.WithLogger(discard))
	if err == nil {
		r.Shutdown(context.Background())
		t.Fatal("New succeeded on a spool another process holds")
	}
	if !strings.Contains(err.Error(), spool+" is in use") {
		t.Errorf("New error = %q, want it to name the spool in use", err)
	}
	child.Kill()
	r, err = meter.New("orders", &sink{}, meter.WithoutLoop(), meter.WithSpool(spool), meter.WithLogger(discard))
	if err != nil {
		t.Fatalf("New once the other process is dead: %v", err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
