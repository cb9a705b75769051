// Package requesttest gives the module's tests the per-request account the
// layers share, as the tenancy stack would create it, and a way to read
// what the layers left in it.
package requesttest

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// Record reads what the layers left in one request's state.
type Record struct{ st *request.State }

// Start returns r, and w, carrying a new state, as the outermost layer of
// the stack hands them on, and the Record of that state.
func Start(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, *Record) {
	w, r, st, _ := request.Enter(request.Stack, w, r)
	return w, r, &Record{st}
}

// StartAt is Start with the request's time, which the layers whose clock
// is the default share (request.State.Start), set to start.
func StartAt(w http.ResponseWriter, r *http.Request, start time.Time) (http.ResponseWriter, *http.Request, *Record) {
	w, r, st, _ := request.EnterAt(request.Stack, w, r, start)
	return w, r, &Record{st}
}

// Of returns the Record of the request ctx belongs to, nil when none.
func Of(ctx context.Context) *Record {
	if st := request.FromContext(ctx); st != nil {
		return &Record{st}
	}
	return nil
}

// Tenant returns the tenant of the request, as its handler would see it.
func (r *Record) Tenant() (tenant.Tenant, bool) { return tenant.FromContext(r.st) }

// Rejection returns the refusal recorded, zero for none.
func (r *Record) Rejection() tenant.Rejection { return tenant.Rejection(r.st.Rejection()) }

// Route returns the route recorded for the request.
func (r *Record) Route(req *http.Request) string { return r.st.Route(req) }

// ran holds the states whose handler ran.
var ran sync.Map

// MarkRan records that the innermost handler of the request ctx belongs
// to ran.
func MarkRan(ctx context.Context) {
	if st := request.FromContext(ctx); st != nil {
		ran.Store(st, true)
	}
}

// HandlerRan reports whether MarkRan was called for the request.
func (r *Record) HandlerRan() bool {
	_, ok := ran.Load(r.st)
	return ok
}

// Routed returns next behind an outer layer that creates the request's
// state as the tenancy stack does, with a route lookup that names every
// request route: what a stack around a router gives the layers inside.
func Routed(route string, next http.Handler) http.Handler {
	lookup := &request.RouteLookup{Find: func(*http.Request) string { return route }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w, r, st, _ := request.Enter(request.Stack, w, r)
		st.SetRouteLookup(lookup)
		next.ServeHTTP(w, r)
	})
}

// SetTenant makes tn the tenant of the request ctx belongs to, as authz
// does once it has verified a token.
func SetTenant(ctx context.Context, tn tenant.Tenant) {
	if st := request.FromContext(ctx); st != nil {
		st.SetTenant(&tn, "")
	}
}

// CaptureReports makes the wiring reports of request.Report go to the
// returned function's result until the test ends, starting from none
// reported, so that a test can count them.
func CaptureReports(t testing.TB) func() []string {
	var mu sync.Mutex
	var reports []string
	prev := request.Report
	request.ForgetReports()
	request.Report = func(msg string) {
		mu.Lock()
		reports = append(reports, msg)
		mu.Unlock()
	}
	t.Cleanup(func() { request.Report = prev })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), reports...)
	}
}
