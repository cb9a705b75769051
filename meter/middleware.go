package meter

import (
	"net/http"
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// The meters of [Middleware]. Declare them with [HTTPMeters].
const (
	MeterRequests      = "http.requests"
	MeterDenied        = "http.requests.denied"
	MeterRequestBytes  = "http.request.bytes"
	MeterResponseBytes = "http.response.bytes"
	MeterDuration      = "http.duration"
)

// HTTPMeters returns the meters [Middleware] records, for [WithMeters]:
// every one has the dimension "route"; denied requests also "reason" (who
// refused and why, such as "throttle:rate"). Each call returns a new slice.
func HTTPMeters() []Meter {
	return []Meter{
		{Name: MeterRequests, Unit: UnitCount, Dimensions: []string{"route"}},
		{Name: MeterDenied, Unit: UnitCount, Dimensions: []string{"route", "reason"}},
		{Name: MeterRequestBytes, Unit: UnitBytes, Dimensions: []string{"route"}},
		{Name: MeterResponseBytes, Unit: UnitBytes, Dimensions: []string{"route"}},
		{Name: MeterDuration, Unit: UnitMilliseconds, Dimensions: []string{"route"}},
	}
}

// Middleware returns middleware that puts rec in the request context, for
// [Add] in handlers, and meters every request for its tenant: one
// http.requests, the bytes read and written, and the duration; a request
// refused by a layer inside (its tenant.Rejection) is metered as
// http.requests.denied instead of http.requests, with the reason. The
// "route" dimension is the route pattern the router set, or for a request
// refused before routing, the one tenancy.New's route lookup finds ("" by
// hand).
//
// It belongs inside logging.AccessLog and outside authz, so that every
// refusal is counted (tenancy.New wires that order); wrapped around a
// layer that belongs outside it, it panics naming the fix.
func Middleware(rec *Recorder) func(http.Handler) http.Handler {
	if rec == nil {
		panic("meter: Middleware needs a *Recorder")
	}
	return func(next http.Handler) http.Handler {
		meters := [...]*meterInfo{
			rec.meter(MeterRequests), rec.meter(MeterDenied), rec.meter(MeterRequestBytes),
			rec.meter(MeterResponseBytes), rec.meter(MeterDuration),
		}
		return request.NewHandler(request.Meter, next, func(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler) {
			start := rec.clock.requestStart(st)
			st.SetRecorder(rec)
			defer rec.meterRequest(&meters, st, r, start)
			next.ServeHTTP(w, r)
		})
	}
}

// meterRequest records the meters of one request once it has been
// answered (meters: requests, denied, request and response bytes,
// duration), with one reading of the clock for all: the end of the
// duration is also the instant that picks the window.
func (rec *Recorder) meterRequest(meters *[5]*meterInfo, st *request.State, r *http.Request, start time.Time) {
	var dims [2]string
	dims[0] = st.Route(r)
	t, ok := tenant.FromContext(st)
	took, end := rec.clock.requestEnd(start)
	p := rec.pointAt(t, ok, end)
	// A request, the bytes read and written, the duration.
	values := [4]float64{1, float64(st.RequestBytes()), float64(st.Response.Bytes()), float64(took) / float64(time.Millisecond)}
	rej := st.Rejection()
	if rej.By == "" && rec.addRequest(p, [4]*meterInfo{meters[0], meters[2], meters[3], meters[4]}, dims[0], &values) {
		return
	}
	if rej.By != "" {
		dims[1] = rej.By + ":" + rej.Reason
		rec.addAt(p, meters[1], values[0], dims[:2])
	} else {
		rec.addAt(p, meters[0], values[0], dims[:1])
	}
	rec.addAt(p, meters[2], values[1], dims[:1])
	rec.addAt(p, meters[3], values[2], dims[:1])
	rec.addAt(p, meters[4], values[3], dims[:1])
}

// requestKey is what the cells of the request meters of one request are
// indexed by: where the usage goes (tenant and window, as in aggKey) and
// the route's tuple in the first meter.
type requestKey struct {
	tenant       string
	window       int64
	tuple        int32
	unattributed bool
}

// requestCells are the cells of the request meters for one requestKey,
// nil for a meter that has had nothing to add yet.
type requestCells [4]*cell

// addRequest adds values (a request, the bytes read and written, the
// duration) to meters (requests, request and response bytes, duration)
// at p, for a request that was not refused, as four addAt with the route
// would: what each adds to which cell, and what is counted, are the same.
// Most requests repeat a tenant and a route of the same window, so the
// four cells are found together, with one lookup and one lock: the shard
// indexes them by the route's tuple in the first meter. It returns false,
// having added nothing, when that cannot be done (the meters take other
// dimensions, the route is too long to keep whole, or its tuple is the
// overflow one), and then the caller adds them one by one.
func (r *Recorder) addRequest(p point, meters [4]*meterInfo, route string, values *[4]float64) bool {
	for _, m := range meters {
		if len(m.Dimensions) != 1 {
			return false
		}
	}
	if len(route) > MaxDimensionValueLen {
		return false // addAt counts each cut value
	}
	if r.closed.Load() {
		r.late(values)
		return true
	}
	dims := [1]string{route}
	first, overflow := meters[0].intern(dims[:], r.cfg.maxTuples, &r.stats.truncated)
	if overflow {
		// The overflow tuple stands for many routes. The add is the
		// caller's: the tuple of the first meter is found again then,
		// which changes nothing.
		return false
	}
	k := requestKey{tenant: p.tenant, tuple: first, unattributed: p.unattributed}
	s := p.shard
	s.mu.RLock()
	k.window = max(p.window, r.openFrom.Load())
	// As in addAt: an add that saw the moved openFrom sees closed too.
	if r.closed.Load() {
		s.mu.RUnlock()
		r.late(values)
		return true
	}
	if g := s.requests[k]; g != nil && g.has(values) {
		for i, v := range values {
			if v != 0 {
				g[i].add(v)
			}
		}
		if r.durable && !s.dirty.Load() {
			s.dirty.Store(true)
		}
		s.mu.RUnlock()
		return true
	}
	s.mu.RUnlock()

	// A cell is missing: find or make it as addAt does, and index it.
	var tuples [4]int32
	tuples[0] = first
	for i := 1; i < len(meters); i++ {
		if values[i] != 0 {
			tuples[i] = meters[i].tupleOf(dims[:], r.cfg.maxTuples, &r.stats.truncated)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k.window = max(p.window, r.openFrom.Load())
	if r.closed.Load() {
		r.late(values)
		return true
	}
	g := s.requests[k]
	if g == nil {
		g = new(requestCells)
		s.requests[k] = g
	}
	for i, v := range values {
		if v == 0 {
			continue
		}
		if g[i] == nil {
			ak := aggKey{tenant: p.tenant, window: k.window, meter: meters[i].index, tuple: tuples[i], unattributed: p.unattributed}
			c := s.m[ak]
			if c == nil {
				c = &cell{tier: p.tier}
				s.m[ak] = c
			}
			g[i] = c
		}
		g[i].add(v)
	}
	if r.durable {
		s.dirty.Store(true)
	}
	return true
}

// has reports whether g has a cell for every value that is not 0.
func (g *requestCells) has(values *[4]float64) bool {
	for i, v := range values {
		if v != 0 && g[i] == nil {
			return false
		}
	}
	return true
}

// late counts the values that are not 0 as adds after Shutdown.
func (r *Recorder) late(values *[4]float64) {
	for _, v := range values {
		if v != 0 {
			r.stats.late.Add(1)
		}
	}
}
