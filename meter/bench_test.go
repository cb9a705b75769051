package meter_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

// BenchmarkAdd measures the hot path in steady state: every cell exists,
// as after the first minute of traffic. The clock is the system clock and
// the window a day, so that no window closes during the run (which would
// create cells and measure the first add of a window instead). The
// ...Checkpoint cases run with WithCheckpoint, its goroutine writing the
// 20,000 aggregates every 500 ms meanwhile.
func BenchmarkAdd(b *testing.B) {
	const tenants = 10_000
	routes := []string{"/orders", "/orders/{id}", "/invoices", "/users", "/health"}
	ctxs := make([]context.Context, tenants)
	for i := range ctxs {
		ctxs[i] = tenantCtx(b, "tenant-"+strconv.Itoa(i))
	}
	for _, bc := range []struct {
		name             string
		dims, checkpoint bool
	}{
		{"NoDimensions", false, false}, {"OneDimension", true, false},
		{"NoDimensionsCheckpoint", false, true}, {"OneDimensionCheckpoint", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := []meter.Option{meter.WithWindow(24 * time.Hour), meter.WithLogger(discard), meter.WithMeters(
				meter.Meter{Name: "api.calls"},
				meter.Meter{Name: "api.routes", Dimensions: []string{"route"}},
			)}
			if bc.checkpoint {
				opts = append(opts, meter.WithSpool(filepath.Join(b.TempDir(), "spool")), meter.WithCheckpoint(0))
			} else {
				opts = append(opts, meter.WithoutLoop())
			}
			r, err := meter.New("orders", &sink{}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Shutdown(context.Background()) })
			for i, ctx := range ctxs {
				r.Add(ctx, "api.calls", 1)
				r.Add(ctx, "api.routes", 1, routes[i%len(routes)])
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919)) // each goroutine starts elsewhere
				for pb.Next() {
					i++
					if i >= tenants {
						i = 0
					}
					if bc.dims {
						r.Add(ctxs[i], "api.routes", 1, routes[i%len(routes)])
					} else {
						r.Add(ctxs[i], "api.calls", 1)
					}
				}
			})
		})
	}
}

// discardWriter is a reusable http.ResponseWriter.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddleware compares a bare handler with the same handler behind
// meter.Middleware: the difference is the overhead per request.
func BenchmarkMiddleware(b *testing.B) {
	r, err := meter.New("orders", &sink{}, meter.WithoutLoop(), meter.WithWindow(24*time.Hour),
		meter.WithLogger(discard), meter.WithMeters(meter.HTTPMeters()...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Shutdown(context.Background()) })
	body := []byte("ok")
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })
	tn, err := tenant.New("acme", tiers.MustLookup("basic"))
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	req = req.WithContext(tenant.NewContext(req.Context(), tn))
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"Bare", handler},
		{"Metered", meter.Middleware(r)(handler)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &discardWriter{h: make(http.Header)}
			bc.h.ServeHTTP(w, req) // create the cells
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkCheckpoint measures one checkpoint of 25,000 open aggregates
// (5,000 tenants on 5 meters, one of them with a dimension): encoding,
// writing, fsync, rename and the directory's fsync. WithCheckpoint's
// bound is its interval plus this.
func BenchmarkCheckpoint(b *testing.B) {
	clk := newClock(start)
	r := durableRecorder(b, clk, &sink{}, filepath.Join(b.TempDir(), "spool"), "i-1",
		meter.WithMeters(meter.Meter{Name: "a"}, meter.Meter{Name: "b"}, meter.Meter{Name: "c"}, meter.Meter{Name: "d"},
			meter.Meter{Name: "routes", Dimensions: []string{"route"}}))
	b.Cleanup(func() { r.Shutdown(context.Background()) })
	ctxs := make([]context.Context, 5000)
	for i := range ctxs {
		ctxs[i] = tenantCtx(b, "tenant-"+strconv.Itoa(i))
		for _, m := range []string{"a", "b", "c", "d"} {
			r.Add(ctxs[i], m, 1)
		}
		r.Add(ctxs[i], "routes", 1, "GET /orders/{id}")
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Add(ctxs[i%len(ctxs)], "a", 1) // something to write
		if err := r.Checkpoint(); err != nil {
			b.Fatal(err)
		}
	}
}
