package meter_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
	recs := readLines(t, spool)
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
	if recs := readLines(t, spool); len(recs) != 1 {
		t.Errorf("spool holds %d records, want 1", len(recs))
	}
}
