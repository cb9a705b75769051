package tenant

import (
	"context"
	"sync"
	"sync/atomic"
)

// Record is the per-request account that inner middleware write and outer
// middleware read after the inner chain has returned: which tenant was
// found, and which middleware rejected the request, with what reason. The
// access log of a request that authz let through but throttle refused names
// both the tenant and the refusal, without either middleware knowing about
// logs.
//
// The outermost middleware that cares (logging, meter) creates the Record
// with [NewRecordContext]. Inner middleware fetch it with [RecordFromContext]
// and write to it; every method is safe on a nil *Record, so they need not
// check whether anyone is listening. A Record is safe for concurrent use: a
// handler may hand its context to goroutines.
type Record struct {
	mu        sync.Mutex
	tenant    Tenant
	hasTenant bool
	rejection Rejection
	notes     []Note
	inline    [2]Note // the first notes, without an allocation
	response  *ResponseMeter
	route     string
}

// ResponseMeter counts what a request's handler wrote: the status and the
// bytes of the body. The outermost middleware that wraps the
// ResponseWriter puts one in the [Record] ([Record.SetResponseMeter]), and
// inner middleware that need the same numbers read it instead of wrapping
// the writer a second time. Its methods are safe for concurrent use.
type ResponseMeter struct {
	status atomic.Int32
	bytes  atomic.Int64
}

// WriteHeader records the status sent, the first time only.
func (m *ResponseMeter) WriteHeader(code int) { m.status.CompareAndSwap(0, int32(code)) }

// Wrote adds n bytes of body; a body sent without a status is a 200.
func (m *ResponseMeter) Wrote(n int64) {
	m.status.CompareAndSwap(0, 200)
	m.bytes.Add(n)
}

// Status returns the status sent, 0 if none yet.
func (m *ResponseMeter) Status() int { return int(m.status.Load()) }

// Bytes returns the bytes of body written so far.
func (m *ResponseMeter) Bytes() int64 { return m.bytes.Load() }

// Rejection says which middleware refused a request and why.
type Rejection struct {
	// By names the middleware: "authz", "throttle", "tenant".
	By string
	// Reason is a short machine-readable cause, such as "invalid_token",
	// "expired", "rate", "quota" or "concurrency".
	Reason string
	// Status is the HTTP status the client was sent.
	Status int
}

// IsZero reports whether r records no rejection.
func (r Rejection) IsZero() bool { return r.By == "" }

// Note is a named value a middleware leaves for the access log or meters,
// such as a throttle's remaining quota. Keys are short snake_case words.
type Note struct {
	Key   string
	Value any
}

type recordKey struct{}

// NewRecordContext returns a context carrying a new, empty Record, and the
// Record. When ctx already carries one, it is returned instead, so that two
// outer middleware share one account of the request.
func NewRecordContext(ctx context.Context) (context.Context, *Record) {
	if rec := RecordFromContext(ctx); rec != nil {
		return ctx, rec
	}
	rec := new(Record)
	return context.WithValue(ctx, recordKey{}, rec), rec
}

// RecordFromContext returns the Record in ctx, or nil. The methods of a nil
// *Record do nothing and report nothing.
func RecordFromContext(ctx context.Context) *Record {
	rec, _ := ctx.Value(recordKey{}).(*Record)
	return rec
}

// SetTenant records the tenant the request acts for.
func (r *Record) SetTenant(t Tenant) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.tenant, r.hasTenant = t, true
	r.mu.Unlock()
}

// Tenant returns the recorded tenant, if any.
func (r *Record) Tenant() (Tenant, bool) {
	if r == nil {
		return Tenant{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tenant, r.hasTenant
}

// Reject records that a middleware refused the request. The first
// rejection is kept: it is the one the client saw.
func (r *Record) Reject(rej Rejection) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.rejection.IsZero() {
		r.rejection = rej
	}
	r.mu.Unlock()
}

// Rejection returns the recorded rejection; its IsZero reports true when the
// request was not refused by a middleware.
func (r *Record) Rejection() Rejection {
	if r == nil {
		return Rejection{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejection
}

// Annotate adds a note. A later note with the same key replaces the earlier.
func (r *Record) Annotate(key string, value any) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.notes {
		if r.notes[i].Key == key {
			r.notes[i].Value = value
			return
		}
	}
	if r.notes == nil {
		r.notes = r.inline[:0]
	}
	r.notes = append(r.notes, Note{Key: key, Value: value})
}

// Notes returns a copy of the notes, in the order their keys were first
// added.
func (r *Record) Notes() []Note { return r.AppendNotes(nil) }

// AppendNotes appends the notes to dst and returns it, for a caller that
// keeps a buffer.
func (r *Record) AppendNotes(dst []Note) []Note {
	if r == nil {
		return dst
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(dst, r.notes...)
}

// SetRoute records the route pattern the request was served by, as an
// http.ServeMux sets it in the Request it routes: middleware that pass a
// request copy to the router call it after the router returns, so that
// outer middleware (access log, meter) need not route the request again.
// An empty pattern, or a second one, changes nothing: the innermost router
// that routed the request reports first.
func (r *Record) SetRoute(pattern string) {
	if r == nil || pattern == "" {
		return
	}
	r.mu.Lock()
	if r.route == "" {
		r.route = pattern
	}
	r.mu.Unlock()
}

// Route returns the recorded route pattern, "" if none.
func (r *Record) Route() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.route
}

// SetResponseMeter records the meter of the response writer's outermost
// wrapper; see [ResponseMeter].
func (r *Record) SetResponseMeter(m *ResponseMeter) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.response = m
	r.mu.Unlock()
}

// ResponseMeter returns the meter set by an outer middleware, or nil.
func (r *Record) ResponseMeter() *ResponseMeter {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.response
}
