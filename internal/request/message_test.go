package request_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
)

// TestMessageStateHidesTheRequest: a message handled in a request's
// context gets a state of its own, which answers none of the request's
// tenant, request ID or state, but passes its other values and the meter's
// recorder.
func TestMessageStateHidesTheRequest(t *testing.T) {
	_, r, reqState, _ := request.Enter(request.Authz, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	tn := "the request's tenant"
	reqState.SetTenant(&tn, "token")
	reqState.SetRecorder("recorder")
	reqState.Info.ID = "req-1"
	ctx := context.WithValue(r.Context(), otherKey{}, "other")

	st, created := request.EnterMessage(request.AccessLog, ctx)
	if !created || st == reqState {
		t.Fatal("EnterMessage reused the request's state")
	}
	if v := st.Value(request.TenantKey); v != nil {
		t.Errorf("the message's state answers the request's tenant: %v", v)
	}
	if v := st.Value(request.RequestIDKey); v != nil {
		t.Errorf("the message's state answers the request's ID: %v", v)
	}
	if got := request.FromContext(st); got != st {
		t.Errorf("FromContext = %p, want the message's state %p", got, st)
	}
	if v := st.Value(otherKey{}); v != "other" {
		t.Errorf("other value = %v", v)
	}
	if v, ok := st.Value(request.RecorderKey).(*request.State); !ok || v.Recorder() != "recorder" {
		t.Errorf("recorder = %v, want the request's", v)
	}

	again, created := request.EnterMessage(request.Meter, st)
	if created || again != st {
		t.Error("an inner layer did not find the message's state")
	}
}

// TestMessageLayersMisordered: a message layer built around one that
// belongs outside it panics; entered after it, it is reported once.
func TestMessageLayersMisordered(t *testing.T) {
	type next = request.MessageNext[string]
	serve := func(st *request.State, m string, next next) error {
		if next == nil {
			return nil
		}
		return next.HandleMessage(st, m)
	}
	inner := request.NewMessageHandler[string](request.AccessLog, nil, serve)
	func() {
		defer func() {
			if msg, _ := recover().(string); !strings.Contains(msg, "logging.MessageLog runs inside the message trust mode") {
				t.Errorf("panic %q", msg)
			}
		}()
		request.NewMessageHandler[string](request.Authz, inner, serve)
	}()

	reported := requesttest.CaptureReports(t)
	st, _ := request.EnterMessage(request.Throttle, context.Background())
	for range 2 {
		request.EnterMessage(request.Meter, st)
	}
	if r := reported(); len(r) != 1 || !strings.HasPrefix(r[0], "meter: meter.MessageMiddleware runs inside (throttle.Limiter).MessageMiddleware") {
		t.Errorf("reports %q", r)
	}
}

// derivedKey is the key TestDeriveMessageValue derives.
type derivedKey struct{}

// TestDeriveMessageValue: a message's context answers the derived key
// with what derive adds to the context the message came with, deriving it
// on the first lookup only, once however many goroutines ask, and never
// when no one asks; other keys are not derived. A State that is not a
// message's as EnterMessage made it, or has a derived key already, is
// left alone.
func TestDeriveMessageValue(t *testing.T) {
	var calls atomic.Int32
	derive := func(parent context.Context, arg any) context.Context {
		calls.Add(1)
		return context.WithValue(parent, derivedKey{}, arg.(string)+" derived")
	}
	parent := context.WithValue(context.Background(), otherKey{}, "other")

	st, _ := request.EnterMessage(request.AccessLog, parent)
	if !request.DeriveMessageValue(st, derivedKey{}, derive, "baggage") {
		t.Fatal("DeriveMessageValue refused a new message state")
	}
	if request.DeriveMessageValue(st, derivedKey{}, derive, "again") {
		t.Error("DeriveMessageValue accepted a second derived key")
	}
	if v := st.Value(otherKey{}); v != "other" || calls.Load() != 0 {
		t.Errorf("other key = %v after %d derivations, want the parent's value and none", v, calls.Load())
	}
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Go(func() { got[i] = st.Value(derivedKey{}) })
	}
	wg.Wait()
	for i, v := range got {
		if v != "baggage derived" {
			t.Errorf("lookup %d = %v, want the derived value", i, v)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("derive ran %d times, want once", n)
	}

	// Never asked: never derived.
	calls.Store(0)
	unasked, _ := request.EnterMessage(request.AccessLog, parent)
	request.DeriveMessageValue(unasked, derivedKey{}, derive, "baggage")
	unasked.Value(otherKey{})
	if n := calls.Load(); n != 0 {
		t.Errorf("derive ran %d times for a message whose key no one asked for", n)
	}

	// A State whose Context was replaced, or a request's, is left alone.
	replaced, _ := request.EnterMessage(request.AccessLog, parent)
	replaced.Context = context.WithValue(replaced.Context, otherKey{}, "replaced")
	if request.DeriveMessageValue(replaced, derivedKey{}, derive, "x") {
		t.Error("DeriveMessageValue accepted a State whose Context was replaced")
	}
	_, _, reqState, _ := request.Enter(request.AccessLog, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if request.DeriveMessageValue(reqState, derivedKey{}, derive, "x") {
		t.Error("DeriveMessageValue accepted a request's State")
	}
}

// TestMessageStart: a message's State starts when the first layer enters
// it, for every layer to read instead of the clock; inner layers find the
// same start.
func TestMessageStart(t *testing.T) {
	before := time.Now()
	st, _ := request.EnterMessage(request.AccessLog, context.Background())
	after := time.Now()
	if s := st.Start(); s.Before(before) || s.After(after) {
		t.Errorf("Start = %v, want between %v and %v", s, before, after)
	}
	inner, _ := request.EnterMessage(request.Throttle, st)
	if inner.Start() != st.Start() {
		t.Errorf("an inner layer's Start = %v, want the first's %v", inner.Start(), st.Start())
	}
}
