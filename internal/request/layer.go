package request

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// atomicBits is a set of layers safe for concurrent use.
type atomicBits struct{ v atomic.Uint32 }

func (b *atomicBits) set(l Layer)      { b.v.Or(1 << l) }
func (b *atomicBits) has(l Layer) bool { return b.v.Load()&(1<<l) != 0 }

// Layer is a part of the stack. Layers are ranked in the one order that
// works, outermost first: the access log must see every refusal, the meter
// must count them, authz must set the tenant before the throttle spends
// its budget, and credentials are fetched only for a request the throttle
// let through.
type Layer uint8

// The layers, outermost first.
const (
	Stack Layer = iota + 1
	AccessLog
	Meter
	Authz
	Throttle
	Credentials
	// Resolver is tenant.Middleware: it may sit on either side of authz,
	// which checks that the two agree, so it has no rank.
	Resolver
)

// Order is the order of the layers as the reports spell it.
const Order = "logging.AccessLog → meter.Middleware → authz.Middleware → (throttle.Limiter).Middleware → awscreds.Middleware, outermost first"

var layerNames = [...]string{
	Stack:       "tenancy.Stack",
	AccessLog:   "logging.AccessLog",
	Meter:       "meter.Middleware",
	Authz:       "authz.Middleware",
	Throttle:    "(throttle.Limiter).Middleware",
	Credentials: "awscreds.Middleware",
	Resolver:    "tenant.Middleware",
}

func (l Layer) String() string {
	if int(l) < len(layerNames) && layerNames[l] != "" {
		return layerNames[l]
	}
	return fmt.Sprintf("Layer(%d)", l)
}

// pkg is the package prefix of l's messages.
func (l Layer) pkg() string {
	switch l {
	case Stack:
		return "tenancy"
	case AccessLog:
		return "logging"
	case Meter:
		return "meter"
	case Authz:
		return "authz"
	case Throttle:
		return "throttle"
	case Credentials:
		return "awscreds"
	case Resolver:
		return "tenant"
	}
	return "tenancy"
}

// consequence says what goes wrong when outer runs inside inner, the
// layer that belongs inside it.
func consequence(outer, inner Layer) string {
	switch {
	case outer == AccessLog:
		return "requests " + inner.String() + " refuses get no access line and no audit event"
	case outer == Meter:
		return "requests " + inner.String() + " refuses are not metered"
	case outer == Authz && inner == Throttle:
		return "the throttle sees no tenant and refuses every request with 401"
	case outer == Authz && inner == Credentials:
		return "no request has a verified tenant when its credentials are fetched, so every one is refused"
	case outer == Throttle && inner == Credentials:
		return "credentials are fetched from STS for requests the throttle then refuses"
	}
	return "the layers do not see each other's decisions"
}

func misorder(outer, inner Layer) string {
	return fmt.Sprintf("%s: %s runs inside %s, which belongs inside it: %s. Wire them %s, or build the stack with tenancy.New, which does",
		outer.pkg(), outer, inner, consequence(outer, inner), Order)
}

// reported remembers the misorders reported at run time, by pair, so that
// each is reported once.
var reported sync.Map

// Report is where a misorder seen at run time goes, once per pair:
// slog.Default at error level. Tests replace it.
var Report = func(msg string) { slog.Default().Error(msg) }

// reportOnce reports msg under key, the first time only.
func reportOnce(key any, msg string) {
	if _, dup := reported.LoadOrStore(key, true); !dup {
		Report(msg)
	}
}

// ForgetReports makes every misorder reportable again, for tests that
// count reports and may run more than once in a process.
func ForgetReports() { reported.Clear() }

// ReportOnce reports a wiring mistake a layer found at run time, once per
// key for the life of the process.
func ReportOnce(key any, msg string) { reportOnce(key, msg) }

type pair struct{ outer, inner Layer }

// Enter is how layer l starts on a request. It returns the request's
// State: the one in r's context, or a new one when l is the first layer
// (created is true), and then also the writer and the request that carry
// it, which l passes on. A layer that enters after a layer that belongs
// inside it is reported, once per pair.
func Enter(l Layer, w http.ResponseWriter, r *http.Request) (_ http.ResponseWriter, _ *http.Request, st *State, created bool) {
	return EnterAt(l, w, r, time.Time{})
}

// EnterAt is Enter with the request's time (see [State.Start]) given for
// a State it creates; the zero time reads the clock. Tests use it to tell
// the time the layers share from a clock a layer reads itself.
func EnterAt(l Layer, w http.ResponseWriter, r *http.Request, start time.Time) (_ http.ResponseWriter, _ *http.Request, st *State, created bool) {
	if st = FromContext(r.Context()); st != nil {
		if l == Resolver {
			return w, r, st, false
		}
		entered := st.entered.Or(1 << l)
		if above := uint8(entered) &^ (1<<(l+1) - 1); above != 0 {
			inner := l + 1
			for above&(1<<inner) == 0 {
				inner++
			}
			reportOnce(pair{l, inner}, misorder(l, inner))
		}
		return w, r, st, false
	}
	if start.IsZero() {
		start = time.Now()
	}
	st = &State{Context: r.Context(), given: r, start: start}
	if l != Resolver {
		st.entered.Store(1 << l)
	}
	r2 := r.WithContext(st)
	if r.Body != nil && r.Body != http.NoBody {
		st.body.body = r.Body
		r2.Body = &st.body
	}
	return st.writers.wrap(w, &st.Response), r2, st, true
}

// First reports whether l, which has entered, is the first layer to see
// the request but for the Stack that created the State: whether it may
// still replace the State's Context.
func (s *State) First(l Layer) bool {
	return s.entered.Load()&^(1<<Stack|1<<l) == 0
}

// Entered reports whether layer l has seen the request.
func (s *State) Entered(l Layer) bool {
	return s.entered.Load()&(1<<l) != 0
}

// Handler is a layer's handler. It knows the handler inside it, so that a
// wrong order between two layers wired directly is found when the stack is
// built.
type Handler struct {
	layer Layer
	next  http.Handler
	serve func(w http.ResponseWriter, r *http.Request, st *State, next http.Handler)
}

// NewHandler returns layer l's handler around next: for each request it
// enters the State and calls serve, which calls next (or refuses). When
// next is not itself a layer, the route pattern the router sets is
// recorded once next returns: the innermost layer is the one place the
// route is taken.
//
// It panics, naming the fix, when next holds a layer that belongs outside
// l.
func NewHandler(l Layer, next http.Handler, serve func(w http.ResponseWriter, r *http.Request, st *State, next http.Handler)) http.Handler {
	for n := next; ; {
		h, ok := n.(*Handler)
		if !ok {
			break
		}
		if h.layer < l && l != Resolver && h.layer != Resolver {
			panic(misorder(h.layer, l))
		}
		n = h.next
		if t, ok := n.(routeTaker); ok {
			n = t.next
		}
	}
	if _, ok := next.(*Handler); !ok {
		next = routeTaker{next}
	}
	built.set(l)
	return &Handler{layer: l, next: next, serve: serve}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, r, st, _ := Enter(h.layer, w, r)
	h.serve(w, r, st, h.next)
}

// routeTaker records the route pattern its handler (the router) set.
type routeTaker struct{ next http.Handler }

func (t routeTaker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.next.ServeHTTP(w, r)
	if st := FromContext(r.Context()); st != nil {
		st.setRoute(r.Pattern)
	}
}

// built has a bit per Layer of which a handler was built in this process.
var built atomicBits

// Built reports whether a handler of layer l was built in this process: a
// throttle that finds no tenant asks whether an authz layer exists that
// has not run for the request.
func Built(l Layer) bool { return built.has(l) }
