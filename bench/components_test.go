package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/didip/tollbooth/v7"
	tblimiter "github.com/didip/tollbooth/v7/limiter"
	"github.com/go-chi/httprate"
	"github.com/golang-jwt/jwt/v5"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// BenchmarkVerify verifies one RS256 token: ours without the cache, the
// same with it, golang-jwt's jwt.Parse with the same key (what ours is
// built on; ours reads the token with a decoder of its own, so it can be
// cheaper), and auth0's validator, which the anchor stack
// runs on every request.
func BenchmarkVerify(b *testing.B) {
	f := getFixture(b)
	ctx := context.Background()
	uncached := f.verifier(b, authz.WithCacheSize(-1))
	cached := f.verifier(b)
	key := f.iss.PublicKey()
	keyfunc := func(*jwt.Token) (any, error) { return key, nil }
	auth0 := newAuth0Validator(b, f)
	for _, bc := range []struct {
		name   string
		verify func() error
	}{
		{"tenancy", func() error { _, err := uncached.Verify(ctx, f.token); return err }},
		{"tenancy-cached", func() error { _, err := cached.Verify(ctx, f.token); return err }},
		{"jwt.Parse", func() error { _, err := jwt.Parse(f.token, keyfunc); return err }},
		{"auth0", func() error { _, err := auth0.ValidateToken(ctx, f.token); return err }},
	} {
		if err := bc.verify(); err != nil {
			b.Fatalf("%s: %v", bc.name, err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.verify(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// throttleTenants is how many tenants the throttle benchmarks spread
// their decisions over, every one already tracked.
const throttleTenants = 100_000

func throttleTenantIDs() []string {
	ids := make([]string, throttleTenants)
	for i := range ids {
		// Shaped like the UUIDs identity providers hand out.
		ids[i] = fmt.Sprintf("%08x-4b1d-4e57-9a3c-%012x", i, uint64(i)*2654435761)
	}
	return ids
}

// BenchmarkThrottle makes one allow-or-refuse decision for one of 100,000
// tenants, from every CPU at once: ours through Limiter.Allow (what the
// middleware calls: limits by tier, the store, the decision counter) and
// its MemoryStore alone; httprate's RateLimiter.OnLimit (its in-memory
// sliding-window counter, which also sets its X-RateLimit headers, as the
// decision and the headers are one call there); throttled's GCRA limiter
// on its memstore (bounded, LRU); tollbooth's LimitReached (x/time/rate
// buckets in an expirable cache). No decision refuses.
func BenchmarkThrottle(b *testing.B) {
	ids := throttleTenantIDs()
	ctx := context.Background()
	premium := tenant.DefaultTiers.MustLookup("premium")
	tenants := make([]tenant.Tenant, len(ids))
	for i, id := range ids {
		tenants[i] = tenant.Tenant{ID: id, Tier: premium}
	}
	lim := unlimited()["premium"]

	type decide func(i int, w *discardWriter) bool // reports whether allowed
	for _, bc := range []struct {
		name  string
		build func(b *testing.B) decide
	}{
		{"tenancy", func(b *testing.B) decide {
			l, err := throttle.New(tenant.DefaultTiers, unlimited())
			if err != nil {
				b.Fatal(err)
			}
			return func(i int, _ *discardWriter) bool {
				d, _ := l.Allow(ctx, tenants[i], 1)
				return d.Allowed
			}
		}},
		{"tenancy-memorystore", func(b *testing.B) decide {
			s, err := throttle.NewMemoryStore()
			if err != nil {
				b.Fatal(err)
			}
			return func(i int, _ *discardWriter) bool {
				res, _ := s.Take(ctx, ids[i], lim, 1, time.Now())
				return res.Allowed
			}
		}},
		{"httprate", func(b *testing.B) decide {
			rl := httprate.NewRateLimiter(1<<30, time.Minute)
			req := httptest.NewRequest(http.MethodGet, "/orders", nil)
			return func(i int, w *discardWriter) bool {
				return !rl.OnLimit(w, req, ids[i])
			}
		}},
		{"throttled", func(b *testing.B) decide {
			st, err := memstore.NewCtx(2 * throttleTenants)
			if err != nil {
				b.Fatal(err)
			}
			rl, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: throttled.PerSec(1e9), MaxBurst: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			return func(i int, _ *discardWriter) bool {
				limited, _, err := rl.RateLimitCtx(ctx, ids[i], 1)
				return err == nil && !limited
			}
		}},
		{"tollbooth", func(b *testing.B) decide {
			lmt := tollbooth.NewLimiter(1e9, &tblimiter.ExpirableOptions{DefaultExpirationTTL: time.Hour})
			return func(i int, _ *discardWriter) bool {
				return !lmt.LimitReached(ids[i])
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			allowed := bc.build(b)
			w := newDiscardWriter()
			for i := range ids { // every tenant tracked, as after a while in service
				allowed(i, w)
			}
			var seq, refused atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := newDiscardWriter()
				i := int(seq.Add(1)) * 7919 // each goroutine starts elsewhere
				for pb.Next() {
					i++
					if i >= len(ids) {
						i = 0
					}
					if !allowed(i, w) {
						refused.Add(1)
					}
				}
			})
			if n := refused.Load(); n > 0 {
				b.Fatalf("%d decisions refused: not the allowed path", n)
			}
		})
	}
}

// logContext returns a request's context as our stack leaves it for a
// handler: tenant, request ID and a trace.
func logContext() context.Context {
	t := tenant.Tenant{ID: benchTenant, Tier: tenant.DefaultTiers.MustLookup(benchTier), Subject: "alice"}
	ctx := tenant.NewContext(context.Background(), t)
	ctx = logging.NewRequestIDContext(ctx, "01J9ZK5V3M6Q4W8X2Y7B0C1D2E")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	return trace.ContextWithSpanContext(ctx, sc)
}

// BenchmarkLogLine writes one application log line with the tenant, user,
// request and trace fields: ours finds them in the context and writes
// through logging.JSONHandler; by hand they are passed to slog's JSON
// handler, which writes the same bytes; the anchor's access line (ten
// fields, the tenant from auth0's claims) is the line a team's own
// access log writes per request.
func BenchmarkLogLine(b *testing.B) {
	ctx := logContext()
	ours := slog.New(logging.NewHandler(discardOurJSON()))
	plain := slog.New(discardJSON())
	f := getFixture(b)

	// The anchor's line reads the claims auth0 put in the request context.
	var anchorReq *http.Request
	newAnchorStack(b, f, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		anchorReq = r
	}), nil, nil).ServeHTTP(newDiscardWriter(), newRequest(f.token))
	if id, _ := anchorClaims(anchorReq); id != benchTenant {
		b.Fatalf("the anchor's request names tenant %q", id)
	}
	anchorCtx := trace.ContextWithSpanContext(anchorReq.Context(), trace.SpanContextFromContext(ctx))

	b.Run("tenancy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ours.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.String("status", "created"))
		}
	})
	b.Run("json-by-hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			plain.LogAttrs(ctx, slog.LevelInfo, "order created",
				slog.String(logging.KeyTenantID, benchTenant),
				slog.String(logging.KeyTenantTier, benchTier),
				slog.String(logging.KeyUserID, "alice"),
				slog.String(logging.KeyRequestID, "01J9ZK5V3M6Q4W8X2Y7B0C1D2E"),
				slog.String(logging.KeyTraceID, "4bf92f3577b34da6a3ce929d0e0e4736"),
				slog.String(logging.KeySpanID, "00f067aa0ba902b7"),
				slog.Int("order", 42), slog.String("status", "created"))
		}
	})
	b.Run("anchor-access-line", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			logAnchorLine(anchorCtx, plain, anchorReq, http.StatusOK, int64(len(ordersBody)), 850*time.Microsecond)
		}
	})
}

// BenchmarkAccessLog is one request through each access log middleware
// alone, around a handler that writes the orders body: ours (request ID,
// trace context, route, the Record for inner middleware) and the anchor's
// hand-written one.
func BenchmarkAccessLog(b *testing.B) {
	app := newApp()
	req := newRequest("unused")
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"tenancy", logging.AccessLog(slog.New(logging.NewHandler(discardOurJSON())))(app)},
		{"anchor", anchorAccessLog(slog.New(discardJSON()))(app)},
	} {
		serveOK(b, bc.h, req)
		b.Run(bc.name, func(b *testing.B) {
			w := newDiscardWriter()
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

// meterTenants is how many tenants the metering benchmarks spread their
// adds over, every one already counted in the current window.
const meterTenants = 10_000

// BenchmarkMeterAdd adds 1 to a tenant's counter, from every CPU at once:
// ours with meter.Add (the tenant and the recorder from the context), and
// what a team would otherwise write, an OpenTelemetry SDK Int64Counter
// with the tenant as an attribute — as usually written (the attribute
// built on each call) and at its best (an attribute set built once per
// tenant and kept).
func BenchmarkMeterAdd(b *testing.B) {
	premium := tenant.DefaultTiers.MustLookup("premium")
	ids := throttleTenantIDs()[:meterTenants]

	rec, err := meter.New("orders", noSink, meter.WithoutLoop(),
		meter.WithWindow(24*time.Hour), // no window closes during the run
		meter.WithMeters(meter.Meter{Name: "orders.listed"}),
		meter.WithLogger(slog.New(discardJSON())))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rec.Shutdown(context.Background()) })
	ctxs := make([]context.Context, len(ids))
	for i, id := range ids {
		ctxs[i] = meter.NewContext(tenant.NewContext(context.Background(), tenant.Tenant{ID: id, Tier: premium}), rec)
	}

	// No cardinality limit: the default 2,000 would fold the other
	// tenants into an overflow series, useless for billing.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()), sdkmetric.WithCardinalityLimit(0))
	b.Cleanup(func() { mp.Shutdown(context.Background()) })
	counter, err := mp.Meter("orders").Int64Counter("orders.listed")
	if err != nil {
		b.Fatal(err)
	}
	sets := make([]metric.AddOption, len(ids))
	for i, id := range ids {
		sets[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("tenant_id", id)))
	}
	bg := context.Background()

	for _, bc := range []struct {
		name string
		add  func(i int)
	}{
		{"tenancy", func(i int) { meter.Add(ctxs[i], "orders.listed", 1) }},
		{"otel-sdk", func(i int) { counter.Add(bg, 1, metric.WithAttributes(attribute.String("tenant_id", ids[i]))) }},
		{"otel-sdk-kept-set", func(i int) { counter.Add(bg, 1, sets[i]) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := range ids {
				bc.add(i)
			}
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) * 7919
				for pb.Next() {
					i++
					if i >= len(ids) {
						i = 0
					}
					bc.add(i)
				}
			})
		})
	}
	if st := rec.Stats(); st.Late+st.Invalid > 0 {
		b.Fatalf("meter refused adds: %+v", st)
	}
}
