package meter_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

// withTenant stands for authz: the tenant named by the X-Tenant header
// becomes the tenant of the request.
func withTenant(t testing.TB) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Tenant")
			if id == "" {
				next.ServeHTTP(w, r)
				return
			}
			tn := mustTenant(t, id, "standard")
			requesttest.SetTenant(r.Context(), tn)
			next.ServeHTTP(w, r)
		})
	}
}

// throttled stands for throttle: a request with X-Throttle is refused.
func throttled(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Throttle") != "" {
			tenant.Reject(r.Context(), tenant.Rejection{By: "throttle", Reason: "rate", Status: http.StatusTooManyRequests})
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, "slow down")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ordersHandler reads the body, takes 250ms of clk, meters an order through
// the context and answers 1000 bytes, flushed.
func ordersHandler(t testing.TB, clk *clock) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Errorf("reading the body: %v", err)
		}
		clk.Advance(250 * time.Millisecond)
		meter.Add(r.Context(), "orders.created", 1)
		w.Write(make([]byte, 1000))
		f, ok := w.(http.Flusher)
		if !ok {
			t.Errorf("the wrapped writer is not an http.Flusher")
			return
		}
		f.Flush()
	})
}

func newHTTPRecorder(t testing.TB, clk *clock, s *sink) *meter.Recorder {
	return newRecorder(t, clk, s, meter.WithMeters(meter.HTTPMeters()...),
		meter.WithMeters(meter.Meter{Name: "orders.created"}))
}

func TestMiddlewareMetersPerTenantAndRoute(t *testing.T) {
	clk := newClock(start)
	s := &sink{}
	rec := newHTTPRecorder(t, clk, s)
	h := requesttest.Routed("/orders", meter.Middleware(rec)(
		withTenant(t)(throttled(ordersHandler(t, clk)))))

	requests := []struct {
		tenant, body string
		throttle     bool
		wantCode     int
	}{
		{"acme", strings.Repeat("a", 100), false, http.StatusOK},
		{"acme", strings.Repeat("b", 50), false, http.StatusOK},
		{"globex", strings.Repeat("c", 10), true, http.StatusTooManyRequests},
		{"", "", false, http.StatusOK},
	}
	for _, rq := range requests {
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(rq.body))
		if rq.tenant != "" {
			req.Header.Set("X-Tenant", rq.tenant)
		}
		if rq.throttle {
			req.Header.Set("X-Throttle", "1")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != rq.wantCode {
			t.Errorf("%s: status %d, want %d", rq.tenant, w.Code, rq.wantCode)
		}
		if rq.wantCode == http.StatusOK && !w.Flushed {
			t.Errorf("%s: the handler's Flush did not reach the writer", rq.tenant)
		}
		if _, ok := meter.FromContext(req.Context()); ok {
			t.Errorf("the middleware changed the incoming request's context")
		}
	}
	if err := rec.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	want := map[string]float64{
		"acme|http.requests|route=/orders":       2,
		"acme|http.request.bytes|route=/orders":  150,
		"acme|http.response.bytes|route=/orders": 2000,
		"acme|http.duration|route=/orders":       500,
		"acme|orders.created":                    2,
		// Refused by throttle: denied, not a request; its body was never
		// read, and no time passed.
		"globex|http.requests.denied|reason=throttle:rate|route=/orders": 1,
		"globex|http.response.bytes|route=/orders":                       float64(len("slow down")),
		// No tenant: the unattributed bucket.
		"(unattributed)|http.requests|route=/orders":       1,
		"(unattributed)|http.response.bytes|route=/orders": 1000,
		"(unattributed)|http.duration|route=/orders":       250,
		"(unattributed)|orders.created":                    1,
	}
	got := s.Records()
	if diff := cmp.Diff(want, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if r.TenantID == "acme" && r.Tier != "standard" {
			t.Errorf("record %s of acme has tier %q, want standard", r.Meter, r.Tier)
		}
	}
}

func TestMiddlewareInsideTheRouterUsesThePattern(t *testing.T) {
	clk := newClock(start)
	s := &sink{}
	rec := newHTTPRecorder(t, clk, s)
	mw := meter.Middleware(rec)
	mux := http.NewServeMux()
	mux.Handle("POST /orders/{id}", mw(withTenant(t)(ordersHandler(t, clk))))
	for _, path := range []string{"/orders/1", "/orders/2"} {
		req := httptest.NewRequest(http.MethodPost, path, nil)
		req.Header.Set("X-Tenant", "acme")
		mux.ServeHTTP(httptest.NewRecorder(), req)
	}
	if err := rec.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"acme|http.requests|route=POST /orders/{id}":       2,
		"acme|http.response.bytes|route=POST /orders/{id}": 2000,
		"acme|http.duration|route=POST /orders/{id}":       500,
		"acme|orders.created":                              2,
	}
	if diff := cmp.Diff(want, totals(s.Records())); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

func TestMiddlewareCountsReadFrom(t *testing.T) {
	// Over a real connection, io.Copy to the writer uses its ReadFrom.
	clk := newClock(start)
	s := &sink{}
	rec := newHTTPRecorder(t, clk, s)
	h := requesttest.Routed("/download", meter.Middleware(rec)(
		withTenant(t)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := w.(io.ReaderFrom); !ok {
				t.Errorf("the wrapped writer lost io.ReaderFrom")
			}
			io.Copy(w, io.LimitReader(zeros{}, 5000))
		}))))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Tenant", "acme")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	srv.Client().CloseIdleConnections()
	if n != 5000 {
		t.Fatalf("read %d bytes, want 5000", n)
	}
	srv.Close() // the handler has returned, and metered, once the server closed
	if err := rec.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"acme|http.requests|route=/download":       1,
		"acme|http.response.bytes|route=/download": 5000,
	}
	if diff := cmp.Diff(want, totals(s.Records())); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestMiddlewareNeedsARecorder(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.HasPrefix(v.(string), "meter: ") {
			t.Errorf("Middleware(nil) panicked with %v, want a meter: message", v)
		}
	}()
	meter.Middleware(nil)
}

// TestHTTPMetersFreshCopy: changing what HTTPMeters returned does not
// change a later result.
func TestHTTPMetersFreshCopy(t *testing.T) {
	first := meter.HTTPMeters()
	want := meter.HTTPMeters()
	first[0].Name = "changed"
	first[1].Dimensions[0] = "changed"
	if diff := cmp.Diff(want, meter.HTTPMeters()); diff != "" {
		t.Errorf("HTTPMeters after changing an earlier result (-want +got):\n%s", diff)
	}
}

// TestMiddlewareTakesTheRequestsTime: with the system clock, a request's
// duration runs from the time the stack read once for every layer
// (request.State.Start), not from a reading of the meter's own, and its
// window is the one it ended in.
func TestMiddlewareTakesTheRequestsTime(t *testing.T) {
	s := &sink{}
	rec, err := meter.New("orders", s, meter.WithoutLoop(), meter.WithInstance("i-1"), meter.WithLogger(discard),
		meter.WithMeters(meter.HTTPMeters()...))
	if err != nil {
		t.Fatal(err)
	}
	mw := meter.Middleware(rec)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	before := time.Now()
	began := before.Add(-time.Hour)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w, r, _ = requesttest.StartAt(w, r, began)
		mw.ServeHTTP(w, r)
	})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	after := time.Now()
	if err := rec.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range s.Records() {
		if r.Meter != meter.MeterDuration {
			continue
		}
		found = true
		if min, max := float64(time.Hour)/1e6, float64(after.Sub(began))/1e6; r.Value < min || r.Value > max {
			t.Errorf("duration %v ms, want the hour since the request's time (%v to %v ms)", r.Value, min, max)
		}
		if r.WindowEnd.Before(before) || r.WindowStart.After(after) {
			t.Errorf("window %v to %v, want the one the request ended in (between %v and %v)", r.WindowStart, r.WindowEnd, before, after)
		}
	}
	if !found {
		t.Fatalf("no %s record in %v", meter.MeterDuration, s.Records())
	}
}

// TestMiddlewareMetersAsAddWould: however the middleware finds the cells
// of a request's meters, what it records is what Add with the same values
// records: across tenants, routes and windows (closed by FlushAll in
// between), requests with and without a body, refusals, routes past the
// meter's maximum of dimension values, a route too long to keep whole,
// and requests after Shutdown.
func TestMiddlewareMetersAsAddWould(t *testing.T) {
	clk := newClock(start)
	viaMiddleware, viaAdd := &sink{}, &sink{}
	opts := []meter.Option{meter.WithMeters(meter.HTTPMeters()...), meter.WithMaxDimensionValues(3)}
	recM := newRecorder(t, clk, viaMiddleware, opts...)
	recA := newRecorder(t, clk, viaAdd, opts...)
	long := "/" + strings.Repeat("x", meter.MaxDimensionValueLen+10)

	type req struct {
		tenant, route, body string
		written             int
		took                time.Duration
		refused             bool
	}
	send := func(q req) {
		h := requesttest.Routed(q.route, meter.Middleware(recM)(withTenant(t)(throttled(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.ReadAll(r.Body)
				clk.Advance(q.took)
				w.Write(make([]byte, q.written))
			})))))
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(q.body))
		if q.tenant != "" {
			r.Header.Set("X-Tenant", q.tenant)
		}
		if q.refused {
			r.Header.Set("X-Throttle", "1")
		}
		h.ServeHTTP(httptest.NewRecorder(), r)

		ctx := context.Background()
		if q.tenant != "" {
			ctx = tenant.NewContext(ctx, mustTenant(t, q.tenant, "standard"))
		}
		written, took := float64(q.written), float64(q.took)/float64(time.Millisecond)
		if q.refused {
			recA.Add(ctx, meter.MeterDenied, 1, q.route, "throttle:rate")
			written, took = float64(len("slow down")), 0
		} else {
			recA.Add(ctx, meter.MeterRequests, 1, q.route)
			recA.Add(ctx, meter.MeterRequestBytes, float64(len(q.body)), q.route)
		}
		recA.Add(ctx, meter.MeterResponseBytes, written, q.route)
		recA.Add(ctx, meter.MeterDuration, took, q.route)
	}
	batch := []req{
		{tenant: "acme", route: "GET /orders", written: 100, took: 5 * time.Millisecond},
		{tenant: "acme", route: "GET /orders", written: 100, took: 3 * time.Millisecond},
		{tenant: "acme", route: "POST /orders", body: "order", written: 10, took: time.Millisecond},
		{tenant: "acme", route: "GET /orders", body: "late body", written: 0, took: 0},
		{tenant: "globex", route: "GET /orders", written: 7, took: 2 * time.Millisecond},
		{tenant: "globex", route: "GET /orders", refused: true},
		{route: "GET /orders", written: 1, took: time.Millisecond},
		{tenant: "acme", route: "GET /a", written: 1, took: time.Millisecond}, // past the 3 routes: overflow
		{tenant: "acme", route: "GET /b", written: 1, took: time.Millisecond},
		{tenant: "acme", route: long, written: 1, took: time.Millisecond},
		{tenant: "acme", route: "GET /orders", written: 100, took: 5 * time.Millisecond},
	}
	for round := range 3 {
		for _, q := range batch {
			send(q)
		}
		if recM.RequestCells() == 0 {
			t.Fatal("the middleware indexed no request cells: the test does not test the index")
		}
		if round == 1 {
			for _, rec := range []*meter.Recorder{recM, recA} {
				if err := rec.FlushAll(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		clk.Advance(meter.DefaultWindow)
	}
	for _, rec := range []*meter.Recorder{recM, recA} {
		if err := rec.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The index holds the cells of open windows only.
	if n := recM.RequestCells(); n != 0 {
		t.Errorf("%d entries left in the index of request cells after Shutdown", n)
	}
	send(batch[0])

	byID := func(recs []meter.Record) map[string]meter.Record {
		m := make(map[string]meter.Record)
		for _, r := range recs {
			m[r.ID] = r
		}
		return m
	}
	got, want := viaMiddleware.Records(), viaAdd.Records()
	if len(got) == 0 {
		t.Fatal("no records")
	}
	if diff := cmp.Diff(byID(want), byID(got)); diff != "" {
		t.Errorf("records through the middleware (+) against Add (-):\n%s", diff)
	}
	if got, want := recM.Stats(), recA.Stats(); got.Late != want.Late || got.Truncated != want.Truncated || got.Late == 0 || got.Truncated == 0 {
		t.Errorf("stats through the middleware %+v, through Add %+v: want the same Late and Truncated, not 0", got, want)
	}
}
