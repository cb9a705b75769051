// Package request holds what the layers of one HTTP request share: the
// tenant the request acts for, the refusal the client was sent, the route,
// what the handler wrote, the request ID, the metering recorder. It is
// allocated once per request, by the first layer that sees the request
// (the tenancy.Stack, or the outermost middleware wired by hand), and it is
// the request's context: a State answers the module's context keys itself
// and passes every other lookup, and Deadline, Done and Err, to the context
// the request came with. Layers inside the first add to it instead of
// wrapping the context, the request and the writer again.
//
// It also knows the one right order of the layers and reports a stack
// wired another way: at construction when a layer wraps another directly,
// at the first request when something else sits between them.
package request

import (
	"context"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

// contextKey is the type of the context keys a State answers.
type contextKey uint8

// The context keys of the module. Packages that put a value in a context
// without a State (tenant.NewContext, meter.NewContext,
// logging.NewRequestIDContext) use the same keys, so that the value nearest
// the handler wins whichever way it got there. A State answers each with
// itself when it holds the value.
const (
	stateKey contextKey = iota
	// TenantKey: the tenant; a State answers with itself (see [State.Tenant]).
	TenantKey
	// RecorderKey: the meter's recorder; a State answers with itself (see
	// [State.Recorder]).
	RecorderKey
	// RequestIDKey: a *[Info].
	RequestIDKey
)

// Rejection is a refusal as the state keeps it; tenant.Rejection is its
// public face.
type Rejection struct {
	By, Reason string
	Status     int
	Detail     string
}

// State is one request's account. Its methods are safe for concurrent use:
// a handler may hand its context to goroutines, and a layer outside
// http.TimeoutHandler reads it while the handler may still run. Every layer
// reads it several times per request, so its reads take no lock: what the
// layers record is published atomically (see [latest]).
type State struct {
	// Context is the request's context as it reached the stack. The
	// first layer may replace it before any other sees the State (the
	// access log adds the trace context there).
	context.Context

	// Response counts what the handler wrote.
	Response Response
	// Info is the request ID and the log's cache of span IDs.
	Info Info
	// RateLimit holds the throttle's RateLimit header value, so that
	// setting the header allocates only the string.
	RateLimit [1]string

	body    countingBody
	writers writers
	start   time.Time     // set when the State is created, never changed
	given   *http.Request // the request the first layer was given

	entered  atomic.Uint32 // bit per Layer that has seen the request
	taken    atomic.Uint32 // bit per latest whose first value is in use
	tenant   latest[tenantEntry]
	route    latest[string]
	recorder latest[any] // *meter.Recorder
	// rejection is kept by pointer, not in a latest: a refusal is rare,
	// its answer allocates anyway, and the State stays within 384 bytes.
	rejection atomic.Pointer[Rejection]

	// lookup is the stack's route lookup, shared by its requests.
	lookup atomic.Pointer[RouteLookup]
}

// RouteLookup is a stack's way to find the route of a request refused
// before the router saw it: the same for all the stack's requests, set in
// each State by pointer (see SetRouteLookup).
type RouteLookup struct {
	Find func(*http.Request) string
	// Always: the lookup answers for served requests too, instead of the
	// r.Pattern the router set: a router whose r.Pattern can be part of
	// its route (chi's, when a mounted router copies the request).
	Always bool
}

// The bits of State.taken.
const (
	takenTenant uint32 = 1 << iota
	takenRoute
	takenRecorder
)

// tenantEntry is what SetTenant records.
type tenantEntry struct {
	t     any // *tenant.Tenant, never changed once stored
	token string
}

// latest holds a value that a layer sets once or twice per request and
// the layers read many times, without a lock: a reader loads one pointer.
// The first value set lives in latest itself, so that setting it does not
// allocate; a later one (a second SetTenant) is allocated, so that a
// reader holding the first never sees it change under it. Whether the
// first is in use is a bit of the State's taken, which the State's values
// share to keep it small.
type latest[T any] struct {
	p     atomic.Pointer[T]
	first T
}

// set makes v the value.
func (l *latest[T]) set(v T, taken *atomic.Uint32, bit uint32) {
	p := &l.first
	if taken.Or(bit)&bit != 0 {
		p = new(T)
	}
	*p = v
	l.p.Store(p)
}

// setFirst makes v the value unless one was set: the first wins. When it
// loses, it waits for the winner's value to be readable, so that a caller
// reading right after it never finds none.
func (l *latest[T]) setFirst(v T, taken *atomic.Uint32, bit uint32) {
	if taken.Or(bit)&bit == 0 {
		l.first = v
		l.p.Store(&l.first)
		return
	}
	for l.p.Load() == nil {
		runtime.Gosched() // the winner is between its two statements above
	}
}

// get returns the value, and false when none was set.
func (l *latest[T]) get() (T, bool) {
	if p := l.p.Load(); p != nil {
		return *p, true
	}
	var zero T
	return zero, false
}

// FromContext returns the State of the request ctx belongs to, or nil.
func FromContext(ctx context.Context) *State {
	if st, ok := ctx.(*State); ok {
		return st // what every layer finds: no Value call
	}
	st, _ := ctx.Value(stateKey).(*State)
	return st
}

// Value answers the module's keys from the State and passes the others to
// the request's context.
func (s *State) Value(key any) any {
	if k, ok := key.(contextKey); ok {
		switch k {
		case stateKey:
			return s
		case TenantKey:
			if t, _ := s.Tenant(); t != nil {
				return s
			}
		case RecorderKey:
			if s.Recorder() != nil {
				return s
			}
		case RequestIDKey:
			if s.Info.ID != "" {
				return &s.Info
			}
		}
	}
	return s.Context.Value(key)
}

// SetTenant records the tenant the request acts for (a *tenant.Tenant) and
// the token it was verified from ("" for none).
func (s *State) SetTenant(t any, token string) {
	s.tenant.set(tenantEntry{t, token}, &s.taken, takenTenant)
}

// Tenant returns what SetTenant recorded: nil when no tenant.
func (s *State) Tenant() (t any, token string) {
	e, _ := s.tenant.get()
	return e.t, e.token
}

// Reject records a refusal. The first is kept: it is the one the client
// saw. A Rejection without By records nothing: it is none.
func (s *State) Reject(rej Rejection) {
	if rej.By != "" {
		s.rejection.CompareAndSwap(nil, &rej)
	}
}

// Rejection returns the refusal recorded, the zero Rejection for none.
func (s *State) Rejection() Rejection {
	if rej := s.rejection.Load(); rej != nil {
		return *rej
	}
	return Rejection{}
}

// SetRecorder records the meter's recorder for meter.Add in handlers.
func (s *State) SetRecorder(rec any) { s.recorder.set(rec, &s.taken, takenRecorder) }

// Recorder returns what SetRecorder recorded, or nil.
func (s *State) Recorder() any {
	rec, _ := s.recorder.get()
	return rec
}

// SetRouteLookup gives the State the stack's way to find the route of a
// request refused before the router saw it. l is the stack's, shared by
// its requests and never changed, so that setting it costs no allocation.
func (s *State) SetRouteLookup(l *RouteLookup) { s.lookup.Store(l) }

// setRoute records the route pattern the router set, the first time only,
// unless the stack's lookup answers for every request.
func (s *State) setRoute(pattern string) {
	if pattern == "" {
		return
	}
	if l := s.lookup.Load(); l == nil || !l.Always {
		s.route.setFirst(pattern, &s.taken, takenRoute)
	}
}

// Route returns the route pattern of r: the one the router set, or, for a
// request refused before it (or for every request, with Always), the
// stack's lookup (once), or "".
func (s *State) Route(r *http.Request) string {
	if route, ok := s.route.get(); ok {
		return route
	}
	l := s.lookup.Load()
	if l == nil {
		return ""
	}
	route := l.Find(r)
	if route != "" {
		s.route.setFirst(route, &s.taken, takenRoute)
	}
	return route
}

// Given returns the request the first layer was given, before the State's
// copy of it: the one a middleware outside the stack (otelhttp) holds.
func (s *State) Given() *http.Request { return s.given }

// Start returns when the first layer saw the request: one reading of the
// clock, taken when the State was created. The layers whose clock is the
// default (all of them, but in tests) take the request's time from here
// instead of each reading the clock again, which costs about as much as a
// map lookup. A message's State has none: the zero time.
func (s *State) Start() time.Time { return s.start }

// RequestBytes returns the bytes of request body the handler read.
func (s *State) RequestBytes() int64 { return s.body.n.Load() }

// countingBody counts what is read from a request body.
type countingBody struct {
	body interface {
		Read([]byte) (int, error)
		Close() error
	}
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.body.Close() }

// Response is what a handler wrote: the status and the bytes of the body.
type Response struct {
	status   atomic.Int32
	hijacked atomic.Bool
	bytes    atomic.Int64
}

// header records the status sent, the first final one only.
func (m *Response) header(code int) {
	if code >= 200 {
		m.status.CompareAndSwap(0, int32(code))
	}
}

// wrote adds n bytes of body; a body sent without a status is a 200.
func (m *Response) wrote(n int64) {
	m.status.CompareAndSwap(0, http.StatusOK)
	m.bytes.Add(n)
}

// SetStatus records code as the status when none was sent, as the access
// log does for a handler that panicked.
func (m *Response) SetStatus(code int) { m.status.CompareAndSwap(0, int32(code)) }

// Status returns the status sent: 0 when none yet, 101 after a hijack.
func (m *Response) Status() int {
	if m.hijacked.Load() {
		return http.StatusSwitchingProtocols
	}
	return int(m.status.Load())
}

// Sent reports whether a status or body has gone out.
func (m *Response) Sent() bool { return m.status.Load() != 0 || m.hijacked.Load() }

// Bytes returns the bytes of body written so far.
func (m *Response) Bytes() int64 { return m.bytes.Load() }

// Info is a request's ID, the trace and span IDs its log lines carry when
// no tracer gave it a span, and the hex text of those IDs, which the lines
// of the request share instead of encoding them again.
type Info struct {
	ID string
	// Header is ID as a header value, for the response, without an
	// allocation of its own.
	Header [1]string
	// TraceID, SpanID and TraceFlags correlate the request's log lines, and
	// the calls it makes, when its context has no span: the trace of its
	// traceparent header, or a new one, and a span ID of its own. They are
	// never a span of a tracer: sampling decisions stay the tracer's.
	TraceID    [16]byte
	SpanID     [8]byte
	TraceFlags byte

	// own is the hex text of TraceID and SpanID as SetTraceText found
	// them, set before the request's handler runs and never changed after:
	// read without a lock.
	own spanText
	// other is the text of the last other pair asked for (a tracer's
	// span), replaced whole, so that reading it takes no lock either.
	other atomic.Pointer[spanText]
}

// spanText is the hex text of a trace and span ID pair.
type spanText struct {
	tid  [16]byte
	sid  [8]byte
	text string
}

// SetTraceText records text as the hex text of TraceID and SpanID, which
// the caller has just set: the lines of the request take it from here
// instead of encoding the IDs (should the IDs change later, Text encodes
// the new ones). It is called before the request's handler runs, never
// while a line may be logged.
func (i *Info) SetTraceText(text string) { i.own = spanText{tid: i.TraceID, sid: i.SpanID, text: text} }

// Text returns the hex text of a trace and span ID pair (trace first): for
// the Info's own pair, the text SetTraceText recorded; for another, the
// text of the last call when the pair is the same, else made by encode and
// kept for the next, so that the lines of one span share one string. It
// takes no lock.
func (i *Info) Text(tid [16]byte, sid [8]byte, encode func(tid [16]byte, sid [8]byte) string) string {
	if i.own.text != "" && tid == i.own.tid && sid == i.own.sid {
		return i.own.text
	}
	if p := i.other.Load(); p != nil && p.tid == tid && p.sid == sid {
		return p.text
	}
	p := &spanText{tid: tid, sid: sid, text: encode(tid, sid)}
	i.other.Store(p)
	return p.text
}

// HasTrace reports whether the access log gave the request trace IDs.
func (i *Info) HasTrace() bool { return i.TraceID != [16]byte{} }
