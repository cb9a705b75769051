package meter_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/meter"
)

// countingSink keeps no records, only their number, their sum and their
// IDs, so that a test can deliver a million of them. It fails while down.
type countingSink struct {
	down  atomic.Bool
	mu    sync.Mutex
	ids   map[string]int
	sum   float64
	calls int
}

func (s *countingSink) Write(_ context.Context, recs []meter.Record) error {
	if s.down.Load() {
		return errDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.ids == nil {
		s.ids = make(map[string]int)
	}
	for _, r := range recs {
		s.ids[r.ID]++
		s.sum += r.Value
	}
	return nil
}

// TestLongOutage: 30 windows of a sink outage with 5,000 tenants on 5
// meters (750,000 records; 1,000 tenants under the race detector). Memory holds at most WithMaxPending records
// however long it lasts, every window's records are appended to the spool
// (it grows by the same number of bytes each window: nothing is written
// twice), and once the sink is back every record is delivered once.
func TestLongOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("750,000 records")
	}
	const (
		windows    = 30
		maxPending = 100_000
	)
	tenants := 5000
	if raceEnabled {
		tenants = 1000 // 7 times slower: the same shape, 150,000 records
	}
	meters := []string{"api.calls", "storage.bytes", "jobs.run", "emails.sent", "seats"}
	var ms []meter.Meter
	for _, m := range meters {
		ms = append(ms, meter.Meter{Name: m})
	}
	spool := filepath.Join(t.TempDir(), "spool")
	clk := newClock(start)
	s := &countingSink{}
	s.down.Store(true)
	r := newRecorder(t, clk, s, meter.WithMeters(ms...), meter.WithSpool(spool), meter.WithMaxPending(maxPending))
	ctxs := make([]context.Context, tenants)
	for i := range ctxs {
		ctxs[i] = tenantCtx(t, "tenant-"+strconv.Itoa(i))
	}

	var (
		flushTimes []time.Duration
		growth     []int64
		heap       []uint64
		size       int64
		file       os.FileInfo
	)
	for w := range windows {
		for _, ctx := range ctxs {
			for _, m := range meters {
				r.Add(ctx, m, 1)
			}
		}
		clk.Advance(time.Minute)
		began := time.Now()
		if err := r.Flush(context.Background()); !errors.Is(err, errDown) {
			t.Fatalf("window %d: Flush = %v, want %v", w, err, errDown)
		}
		flushTimes = append(flushTimes, time.Since(began))
		if n := r.InMemory(); n > maxPending {
			t.Fatalf("window %d: %d records in memory, want at most %d", w, n, maxPending)
		}
		fi, err := os.Stat(spool)
		if err != nil {
			t.Fatal(err)
		}
		if file != nil && !os.SameFile(file, fi) {
			t.Fatalf("window %d: the spool was replaced by another file: rewritten, not appended to", w)
		}
		file = fi
		growth = append(growth, fi.Size()-size)
		size = fi.Size()
		// Memory holds its maximum of records from the window that
		// brings maxPending, and should hold as much at the end.
		if w == maxPending/(tenants*len(meters)) || w == windows-1 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			heap = append(heap, m.HeapAlloc)
		}
	}
	if st := r.Stats(); st.Pending != tenants*len(meters)*windows || st.Dropped != 0 {
		t.Fatalf("Stats = %+v, want %d pending and none dropped", st, tenants*len(meters)*windows)
	}
	// Each window adds the same records but for their window and ID: the
	// same number of bytes, within a little.
	for w, g := range growth {
		if g < growth[0]*9/10 || g > growth[0]*11/10 {
			t.Errorf("window %d: the spool grew by %d bytes, the first window by %d: something was written again", w, g, growth[0])
		}
	}
	// The heap at the end is about what it was when memory first held
	// its maximum of records.
	full := maxPending/(tenants*len(meters)) + 1
	if heap[1] > heap[0]+heap[0]/2 {
		t.Errorf("heap %d MiB after %d windows, %d MiB after %d: memory grows with the outage", heap[1]>>20, windows, heap[0]>>20, full)
	}
	sorted := slices.Clone(flushTimes)
	slices.Sort(sorted)
	t.Logf("flush while down: first %v, last %v, median %v, max %v; spool %d MiB; heap %d MiB after %d windows, %d MiB after %d",
		flushTimes[0], flushTimes[windows-1], sorted[windows/2], sorted[windows-1], size>>20, heap[0]>>20, full, heap[1]>>20, windows)

	// The process restarts before the sink is back: New reads the spool
	// without holding its records.
	r.Abandon()
	began := time.Now()
	r = newRecorder(t, clk, s, meter.WithMeters(ms...), meter.WithSpool(spool), meter.WithMaxPending(maxPending))
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	t.Logf("New on the spool: %v, heap %d MiB", time.Since(began), m.HeapAlloc>>20)
	if m.HeapAlloc > heap[1]+heap[1]/2 {
		t.Errorf("heap %d MiB after New on the spool, %d MiB before the restart", m.HeapAlloc>>20, heap[1]>>20)
	}
	if st := r.Stats(); st.Pending != tenants*len(meters)*windows {
		t.Fatalf("Stats after the restart = %+v, want %d pending", st, tenants*len(meters)*windows)
	}

	s.down.Store(false)
	began = time.Now()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatalf("Flush once the sink is back: %v", err)
	}
	t.Logf("delivering %d records from the spool: %v", len(s.ids), time.Since(began))
	if len(s.ids) != tenants*len(meters)*windows || s.sum != float64(tenants*len(meters)*windows) {
		t.Errorf("delivered %d records summing to %v, want %d of 1 each", len(s.ids), s.sum, tenants*len(meters)*windows)
	}
	for id, n := range s.ids {
		if n != 1 {
			t.Fatalf("record %s delivered %d times", id, n)
		}
	}
	checkNoFile(t, spool)
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
