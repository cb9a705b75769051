package meter

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/felixge/httpsnoop"
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

// HTTPMeters are the meters [Middleware] records, for [WithMeters]: every
// one has the dimension "route"; denied requests also "reason" (who refused
// and why, such as "throttle:rate").
var HTTPMeters = []Meter{
	{Name: MeterRequests, Unit: UnitCount, Dimensions: []string{"route"}},
	{Name: MeterDenied, Unit: UnitCount, Dimensions: []string{"route", "reason"}},
	{Name: MeterRequestBytes, Unit: UnitBytes, Dimensions: []string{"route"}},
	{Name: MeterResponseBytes, Unit: UnitBytes, Dimensions: []string{"route"}},
	{Name: MeterDuration, Unit: UnitMilliseconds, Dimensions: []string{"route"}},
}

// MiddlewareOption configures [Middleware].
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	route func(*http.Request) string
}

// WithRoute says how to find the route pattern of a request for the
// "route" dimension. Default: the pattern the router set, which the
// library's middleware between it and this one record in the request's
// tenant.Record (a request refused before the router has none). With
// logging.MuxRoute(mux), refused requests get their route too, for the
// cost of routing each request again.
func WithRoute(f func(*http.Request) string) MiddlewareOption {
	return func(c *middlewareConfig) { c.route = f }
}

// Middleware returns middleware that puts rec in the request context, for
// [Add] in handlers, and meters every request for its tenant: one
// http.requests, the bytes read and written, and the duration; a request
// refused by inner or outer middleware (the tenant.Record says so) is
// metered as http.requests.denied instead of http.requests, with the
// reason. Place it outermost among the tenancy middleware, or at least
// outside the ones whose refusals should be counted.
func Middleware(rec *Recorder, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if rec == nil {
		panic("meter: Middleware needs a *Recorder")
	}
	c := middlewareConfig{}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := rec.clock.now()
			ctx := NewContext(r.Context(), rec)
			ctx, account := tenant.NewRecordContext(ctx)
			var in atomic.Int64
			r2 := r.WithContext(ctx)
			if r.Body != nil && r.Body != http.NoBody {
				r2.Body = &countingBody{ReadCloser: r.Body, n: &in}
			}
			// An outer middleware that wraps the writer (the access log)
			// counts the response already; wrap it only when none does.
			resp := account.ResponseMeter()
			if resp == nil {
				resp = new(tenant.ResponseMeter)
				account.SetResponseMeter(resp)
				w = wrapWriter(w, resp)
			}
			defer func() {
				var route string
				if c.route != nil {
					route = c.route(r2)
				} else {
					account.SetRoute(r2.Pattern)
					route = account.Route()
				}
				t, ok := account.Tenant()
				if rej := account.Rejection(); !rej.IsZero() {
					rec.add(t, ok, MeterDenied, 1, []string{route, rej.By + ":" + rej.Reason})
				} else {
					rec.add(t, ok, MeterRequests, 1, []string{route})
				}
				dims := []string{route}
				rec.add(t, ok, MeterRequestBytes, float64(in.Load()), dims)
				rec.add(t, ok, MeterResponseBytes, float64(resp.Bytes()), dims)
				rec.add(t, ok, MeterDuration, float64(rec.clock.now().Sub(start))/float64(time.Millisecond), dims)
			}()
			next.ServeHTTP(w, r2)
		})
	}
}

// wrapWriter counts what is written through w into m, keeping w's optional
// interfaces.
func wrapWriter(w http.ResponseWriter, m *tenant.ResponseMeter) http.ResponseWriter {
	return httpsnoop.Wrap(w, httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				next(code)
				if code >= 200 {
					m.WriteHeader(code)
				}
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(b []byte) (int, error) {
				n, err := next(b)
				m.Wrote(int64(n))
				return n, err
			}
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) {
				n, err := next(src)
				m.Wrote(n)
				return n, err
			}
		},
	})
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
