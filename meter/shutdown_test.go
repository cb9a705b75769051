package meter_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
)

// hangingSink blocks every Write until its context is done, as a sink
// whose endpoint stopped answering does.
type hangingSink struct {
	writing chan struct{} // closed at the first Write
	once    sync.Once
}

func (s *hangingSink) Write(ctx context.Context, _ []meter.Record) error {
	s.once.Do(func() { close(s.writing) })
	<-ctx.Done()
	return ctx.Err()
}

func TestShutdownDoesNotWaitForAHungDelivery(t *testing.T) {
	// The loop is stuck in a delivery when Shutdown's deadline has passed:
	// Shutdown must still return, with the records spooled.
	spool := filepath.Join(t.TempDir(), "spool")
	s := &hangingSink{writing: make(chan struct{})}
	r, err := meter.New("orders", s, testMeters, meter.WithWindow(time.Second), meter.WithSpool(spool),
		meter.WithInstance("i-1"), meter.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	r.Add(tenantCtx(t, "acme"), "api.calls", 3)
	select {
	case <-s.writing:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not deliver in 10s")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- r.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown past its deadline still waits for the sink")
	}
	if st := r.Stats(); st.Spooled != 1 {
		t.Errorf("Stats = %+v, want Spooled 1", st)
	}
	recs := readSpool(t, spool)
	if len(recs) != 1 || recs[0].TenantID != "acme" || recs[0].Value != 3 {
		t.Errorf("spool holds %+v, want the record of 3 for acme", recs)
	}
}

func TestFlushDuringShutdown(t *testing.T) {
	// Flush may be called from another goroutine (a Lambda handler) while
	// Shutdown retries a failing sink.
	spool := filepath.Join(t.TempDir(), "spool")
	clk := newClock(start)
	s, ctx, arm := downUntilShutdownGivesUp()
	r := newRecorder(t, clk, s, testMeters, meter.WithSpool(spool), meter.WithBackoff(time.Millisecond, time.Millisecond))
	r.Add(tenantCtx(t, "acme"), "api.calls", 1)
	arm()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				r.Flush(context.Background())
			}
		}
	})
	err := r.Shutdown(ctx)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if recs := readSpool(t, spool); len(recs) != 1 {
		t.Errorf("spool holds %d records, want 1", len(recs))
	}
}

// spoolCheckingSink fails every Write, and at the first one once armed
// reads the spool file: what the next start would find, should the
// process die while Shutdown waits for the sink.
type spoolCheckingSink struct {
	t      testing.TB
	spool  string
	mu     sync.Mutex
	armed  bool
	onDisk []meter.Record // at the first Write once armed
	calls  int            // once armed
}

func (s *spoolCheckingSink) arm() {
	s.mu.Lock()
	s.armed = true
	s.mu.Unlock()
}

func (s *spoolCheckingSink) Write(ctx context.Context, _ []meter.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.armed {
		return errDown
	}
	s.calls++
	if s.calls == 1 {
		s.onDisk = readSpool(s.t, s.spool)
	}
	return errDown
}

func TestShutdownSpoolsBeforeItTriesTheSink(t *testing.T) {
	// Usage in three places when Shutdown starts: a closed window the sink
	// refused (pending), the open window, and records already spooled by
	// an earlier run. All of it is on disk before the sink is called.
	spool := filepath.Join(t.TempDir(), "spool")
	earlier, ctx0, arm := downUntilShutdownGivesUp()
	r0 := newRecorder(t, newClock(start.Add(-time.Hour)), earlier, testMeters, meter.WithSpool(spool),
		meter.WithBackoff(time.Millisecond, time.Millisecond))
	r0.Add(tenantCtx(t, "initech"), "api.calls", 100)
	arm()
	if err := r0.Shutdown(ctx0); err != nil {
		t.Fatal(err)
	}

	clk := newClock(start)
	s := &spoolCheckingSink{t: t, spool: spool}
	r := newRecorder(t, clk, s, testMeters, meter.WithSpool(spool), meter.WithBackoff(time.Hour, time.Hour))
	r.Add(tenantCtx(t, "acme"), "api.calls", 1)
	clk.Advance(time.Minute)
	if err := r.Flush(context.Background()); !errors.Is(err, errDown) {
		t.Fatalf("Flush = %v, want %v", err, errDown)
	}
	r.Add(tenantCtx(t, "globex"), "api.calls", 2)
	s.arm()

	// A deadline that has passed: Shutdown gives the sink one try.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	want := map[string]float64{"initech|api.calls": 100, "acme|api.calls": 1, "globex|api.calls": 2}
	s.mu.Lock()
	calls, onDisk := s.calls, s.onDisk
	s.mu.Unlock()
	if calls != 1 {
		t.Fatalf("Shutdown called the sink %d times, want one try", calls)
	}
	if diff := cmp.Diff(want, totals(onDisk)); diff != "" {
		t.Errorf("spool when the sink was first called (-want +got):\n%s", diff)
	}
	checkOncePerID(t, onDisk)
	if diff := cmp.Diff(want, totals(readSpool(t, spool))); diff != "" {
		t.Errorf("spool after Shutdown (-want +got):\n%s", diff)
	}
}
