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
	if rej := st.Rejection(); rej.By != "" {
		dims[1] = rej.By + ":" + rej.Reason
		rec.addAt(p, meters[1], 1, dims[:2])
	} else {
		rec.addAt(p, meters[0], 1, dims[:1])
	}
	rec.addAt(p, meters[2], float64(st.RequestBytes()), dims[:1])
	rec.addAt(p, meters[3], float64(st.Response.Bytes()), dims[:1])
	rec.addAt(p, meters[4], float64(took)/float64(time.Millisecond), dims[:1])
}
