package logging_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/metrictest"
	"github.com/tenancykit/tenancy/logging"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// guard fails the test if f has not returned within a minute: the
// property under test is that it returns at all.
func guard(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s blocked", what)
	}
}

func line(i int) []byte { return fmt.Appendf(nil, "{\"msg\":\"line %06d\",\"pad\":\"%040d\"}\n", i, 0) }

// TestAsyncWriterNeverBlocks: with a destination that reads nothing, every
// Write returns at once; what does not fit is dropped whole and counted,
// and when the destination reads again the kept lines come out whole,
// followed by one line saying how many were dropped.
func TestAsyncWriterNeverBlocks(t *testing.T) {
	pr, pw := io.Pipe()
	lineLen := len(line(0))
	reader := sdkmetric.NewManualReader()
	a, err := logging.NewAsyncWriter(pw, logging.WithBufferSize(10*lineLen), logging.WithStreamName("access"),
		logging.WithAsyncMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	const total = 10_000
	guard(t, "writing to a destination that reads nothing", func() {
		for i := range total {
			if n, err := a.Write(line(i)); n != lineLen || err != nil {
				t.Errorf("Write = %d, %v", n, err)
			}
		}
	})
	// What is buffered, and one batch being written, fit; the rest is
	// dropped.
	if got := a.Dropped(); got < total-20 || got > total-10 {
		t.Errorf("Dropped = %d, want between %d and %d (10 lines fit the buffer, 10 more a batch)", got, total-20, total-10)
	}

	var out []string
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
	}()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	<-readDone
	// The kept lines, whole and in order, with reports of the drops (one
	// per stretch of drops the writer saw) between them.
	kept, reported, last := 0, 0, -1
	for _, l := range out {
		var report struct {
			Level, Msg, Stream string
			Dropped            int
		}
		if json.Unmarshal([]byte(l), &report) == nil && report.Dropped > 0 {
			if report.Level != "WARN" || report.Stream != "access" {
				t.Errorf("report line %q", l)
			}
			reported += report.Dropped
			continue
		}
		var i int
		if _, err := fmt.Sscanf(l, `{"msg":"line %d"`, &i); err != nil || l != strings.TrimSuffix(string(line(i)), "\n") || i <= last {
			t.Errorf("line %q is not a whole line after line %d", l, last)
		}
		last = i
		kept++
	}
	if kept+reported != total || uint64(reported) != a.Dropped() {
		t.Errorf("%d lines kept and %d reported dropped (Dropped %d), want %d in all:\n%s", kept, reported, a.Dropped(), total, strings.Join(out, "\n"))
	}

	counted := metrictest.Sum(t, reader, "tenancy.logging.dropped", "stream", "access")
	if uint64(counted) != a.Dropped() {
		t.Errorf("tenancy.logging.dropped{stream=access} = %d, want %d", counted, a.Dropped())
	}
	if _, err := a.Write(line(0)); err == nil {
		t.Error("Write after Shutdown succeeded")
	}
}

// TestAsyncWriterMaxWait: with WithMaxWait, a line that finds the buffer
// full waits for room instead of being dropped.
func TestAsyncWriterMaxWait(t *testing.T) {
	pr, pw := io.Pipe()
	lineLen := len(line(0))
	a, err := logging.NewAsyncWriter(pw, logging.WithBufferSize(2*lineLen), logging.WithMaxWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	a.Write(line(0))
	a.Write(line(1)) // full now
	wrote := make(chan struct{})
	go func() { defer close(wrote); a.Write(line(2)) }()
	var got []string
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			got = append(got, sc.Text())
		}
	}()
	<-wrote
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	<-readDone
	if a.Dropped() != 0 || len(got) != 3 {
		t.Errorf("dropped %d, wrote %d lines; want 0 and 3", a.Dropped(), len(got))
	}
}

// TestAsyncWriterShutdownBounded: Shutdown of a writer whose destination
// reads nothing returns when its context ends, saying what was left.
func TestAsyncWriterShutdownBounded(t *testing.T) {
	pr, pw := io.Pipe()
	a, err := logging.NewAsyncWriter(pw)
	if err != nil {
		t.Fatal(err)
	}
	a.Write(line(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "not written") {
		t.Errorf("Shutdown = %v, want an error saying bytes were not written", err)
	}
	// Let the goroutine finish, for goleak.
	go io.Copy(io.Discard, pr)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
	pw.Close()
}

// TestAsyncWriterConcurrentLinesWhole: lines written by many goroutines
// come out whole, none lost while the destination keeps up.
func TestAsyncWriterConcurrentLinesWhole(t *testing.T) {
	pr, pw := io.Pipe()
	a, err := logging.NewAsyncWriter(pw, logging.WithMaxWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var v map[string]any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Errorf("torn line %q", sc.Text())
			}
			seen[sc.Text()] = true
		}
	}()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				a.Write(line(g*1000 + i))
			}
		})
	}
	wg.Wait()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	<-readDone
	if len(seen) != 8000 || a.Dropped() != 0 {
		t.Errorf("%d distinct lines, %d dropped; want 8000 and 0", len(seen), a.Dropped())
	}
}

func TestNewAsyncWriterRefusesMistakes(t *testing.T) {
	for name, opts := range map[string][]logging.AsyncOption{
		"negative size": {logging.WithBufferSize(-1)},
		"negative wait": {logging.WithMaxWait(-time.Second)},
	} {
		if _, err := logging.NewAsyncWriter(io.Discard, opts...); err == nil || !strings.HasPrefix(err.Error(), "logging: With") {
			t.Errorf("%s: err = %v, want one naming the option", name, err)
		}
	}
	if _, err := logging.NewAsyncWriter(nil); err == nil {
		t.Error("nil writer accepted")
	}
}

// TestAsyncWriterDropReport: WithDropReport chooses the line that reports
// drops, for a text-format destination.
func TestAsyncWriterDropReport(t *testing.T) {
	pr, pw := io.Pipe()
	a, err := logging.NewAsyncWriter(pw, logging.WithBufferSize(len(line(0))),
		logging.WithDropReport(func(n uint64) []byte { return fmt.Appendf(nil, "level=WARN dropped=%d\n", n) }))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		a.Write(line(i))
	}
	var out strings.Builder
	readDone := make(chan struct{})
	go func() { defer close(readDone); io.Copy(&out, pr) }()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	<-readDone
	// One line fits the buffer and one more may be on its way out when
	// the rest arrive: 3 or 4 are dropped, each reported in the custom
	// line, and the kept lines and the drops add up to the 5 written.
	dropped, kept := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var n int
		if _, err := fmt.Sscanf(l, "level=WARN dropped=%d", &n); err == nil {
			dropped += n
		} else {
			kept++
		}
	}
	if dropped < 3 || uint64(dropped) != a.Dropped() || kept+dropped != 5 {
		t.Errorf("reported %d dropped, counted %d, kept %d; want 3 or 4 reported and counted, 5 in all:\n%s", dropped, a.Dropped(), kept, out.String())
	}
}

// recordingWriter keeps every Write it is given, separately.
type recordingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return len(p), nil
}

// TestAsyncWriterWritesWholeLines: every Write the destination gets is
// whole lines, however the buffer wraps, so that another writer of the
// same destination (orders' usage records on stdout) cannot cut a line,
// and a drop report never lands inside one.
func TestAsyncWriterWritesWholeLines(t *testing.T) {
	dest := &recordingWriter{}
	a, err := logging.NewAsyncWriter(dest, logging.WithBufferSize(len(line(0))*5/2))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				a.Write(line(g*2000 + i))
			}
		})
	}
	wg.Wait()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, w := range dest.writes {
		if !strings.HasSuffix(w, "\n") {
			t.Fatalf("a Write of %q does not end a line", w)
		}
		for _, l := range strings.Split(strings.TrimSuffix(w, "\n"), "\n") {
			var v map[string]any
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("a Write holds a broken line %q", l)
			}
			if _, ok := v["dropped"]; !ok {
				lines++
			}
		}
	}
	if uint64(lines)+a.Dropped() != 8000 {
		t.Errorf("%d lines written and %d dropped, want 8000 in all", lines, a.Dropped())
	}
}
