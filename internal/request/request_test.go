package request_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
)

type otherKey struct{}

// TestStateIsTheContext: a State answers the module's keys itself, passes
// other keys and cancellation to the request's context, and a value put in
// a context above it by the same key loses to the State's only when the
// State holds one.
func TestStateIsTheContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "kept"))
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(parent)
	_, r2, st, created := request.Enter(request.AccessLog, httptest.NewRecorder(), r)
	if !created || st == nil {
		t.Fatal("the first layer did not create the State")
	}
	if r2.Context() != context.Context(st) {
		t.Fatal("the request handed on does not carry the State as its context")
	}
	if request.FromContext(r2.Context()) != st {
		t.Error("FromContext does not find the State")
	}
	if got := st.Value(otherKey{}); got != "kept" {
		t.Errorf("a value of the parent context = %v, want kept", got)
	}
	if st.Value(request.TenantKey) != nil || st.Value(request.RecorderKey) != nil {
		t.Error("an empty State answers the tenant or recorder key")
	}
	tn := "acme"
	st.SetTenant(&tn, "tok")
	if st.Value(request.TenantKey) != st {
		t.Error("a State with a tenant does not answer the tenant key with itself")
	}
	if got, tok := st.Tenant(); got.(*string) != &tn || tok != "tok" {
		t.Errorf("Tenant() = %v, %q", got, tok)
	}

	// Cancellation of the request's context reaches the State and any
	// context derived from it.
	child, stop := context.WithTimeout(st, time.Hour)
	defer stop()
	cancel()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the request's context did not cancel a context derived from the State")
	}
	if st.Err() == nil {
		t.Error("the State's Err is nil after cancellation")
	}

	// A second layer shares the State and its writer.
	w := httptest.NewRecorder()
	w2, r3, st2, created := request.Enter(request.Authz, w, r2)
	if created || st2 != st || r3 != r2 || w2 != http.ResponseWriter(w) {
		t.Error("a second layer got a new State, request or writer")
	}
}

// TestRejectionFirstWins: the first refusal is the one the client saw.
func TestRejectionFirstWins(t *testing.T) {
	_, _, st, _ := request.Enter(request.Stack, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	st.Reject(request.Rejection{By: "authz", Reason: "expired", Status: 401})
	st.Reject(request.Rejection{By: "throttle", Reason: "rate", Status: 429})
	if got := st.Rejection(); got.By != "authz" || got.Reason != "expired" || got.Status != 401 {
		t.Errorf("Rejection() = %+v, want the first", got)
	}
}

// TestRejectionWithoutByIsNone: a Rejection that names no layer records
// nothing, so the refusal after it is the one kept.
func TestRejectionWithoutByIsNone(t *testing.T) {
	_, _, st, _ := request.Enter(request.Stack, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	st.Reject(request.Rejection{Reason: "nameless", Status: 400})
	if got := st.Rejection(); got != (request.Rejection{}) {
		t.Errorf("Rejection() = %+v after a rejection without By, want none", got)
	}
	st.Reject(request.Rejection{By: "throttle", Reason: "rate", Status: 429})
	if got := st.Rejection(); got.By != "throttle" {
		t.Errorf("Rejection() = %+v, want the throttle's", got)
	}
}

// TestStateSize: a State is allocated for every request; it stays within
// the runtime's 384-byte size class, which a field added to it can leave
// without anyone noticing.
func TestStateSize(t *testing.T) {
	var st request.State
	if n := unsafe.Sizeof(st); n > 384 {
		t.Errorf("a State is %d bytes, over 384: find room for what was added (pointers to what a stack shares, bits of State.taken)", n)
	}
}

// TestStateConcurrentUse: what the layers record is read and written from
// several goroutines at once without a lock (run with -race): a reader
// sees either no value or a whole one, a tenant set again replaces the
// first, and of concurrent refusals exactly one is kept, whole.
func TestStateConcurrentUse(t *testing.T) {
	_, _, st, _ := request.Enter(request.Stack, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	first, second := "acme", "globex"
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				st.SetTenant(&first, "tok-1")
			case 1:
				st.Reject(request.Rejection{By: "authz", Reason: "expired", Status: 401})
			case 2:
				st.Reject(request.Rejection{By: "throttle", Reason: "rate", Status: 429})
			}
			if tn, tok := st.Tenant(); tn != nil && (tn.(*string) == &first) != (tok == "tok-1") {
				t.Errorf("Tenant() = %v, %q: a tenant with another's token", tn, tok)
			}
			if rej := st.Rejection(); rej.By != "" && rej != (request.Rejection{By: "authz", Reason: "expired", Status: 401}) && rej != (request.Rejection{By: "throttle", Reason: "rate", Status: 429}) {
				t.Errorf("Rejection() = %+v: half of one refusal", rej)
			}
			st.Entered(request.Authz)
			st.Route(nil)
		})
	}
	wg.Wait()
	if st.Rejection().By == "" {
		t.Error("no refusal kept")
	}
	st.SetTenant(&second, "tok-2")
	if tn, tok := st.Tenant(); tn.(*string) != &second || tok != "tok-2" {
		t.Errorf("Tenant() = %v, %q after a second SetTenant, want the second", tn, tok)
	}
}

// TestStartReadOnce: the request's time is read when the first layer
// creates the state, and every later layer gets the same.
func TestStartReadOnce(t *testing.T) {
	before := time.Now()
	w, r, st, _ := request.Enter(request.Stack, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	after := time.Now()
	if got := st.Start(); got.Before(before) || got.After(after) {
		t.Errorf("Start() = %v, want the time the state was created (%v to %v)", got, before, after)
	}
	first := st.Start()
	_, _, st2, _ := request.Enter(request.Throttle, w, r)
	if st2.Start() != first {
		t.Errorf("a later layer's Start() = %v, want the first's %v", st2.Start(), first)
	}
	given := time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)
	_, _, st3, _ := request.EnterAt(request.Stack, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil), given)
	if !st3.Start().Equal(given) {
		t.Errorf("EnterAt: Start() = %v, want %v", st3.Start(), given)
	}
}

// TestRouteTakenOnceByTheInnermostLayer: the route comes from the router
// the innermost layer wraps; a request refused before routing asks the
// stack's lookup once.
func TestRouteTakenOnceByTheInnermostLayer(t *testing.T) {
	var st *request.State
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) { st = request.FromContext(r.Context()) })
	refuse := false
	inner := request.NewHandler(request.Throttle, mux, func(w http.ResponseWriter, r *http.Request, s *request.State, next http.Handler) {
		st = s
		if refuse {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
	lookups := 0
	lookup := &request.RouteLookup{Find: func(r *http.Request) string {
		lookups++
		_, p := mux.Handler(r)
		return p
	}}
	outer := request.NewHandler(request.AccessLog, inner, func(w http.ResponseWriter, r *http.Request, s *request.State, next http.Handler) {
		s.SetRouteLookup(lookup)
		next.ServeHTTP(w, r)
	})

	req := httptest.NewRequest(http.MethodGet, "/orders/7", nil)
	outer.ServeHTTP(httptest.NewRecorder(), req)
	if got := st.Route(req); got != "GET /orders/{id}" || lookups != 0 {
		t.Errorf("routed request: route %q after %d lookups, want the router's pattern and none", got, lookups)
	}

	refuse = true
	outer.ServeHTTP(httptest.NewRecorder(), req)
	for range 3 {
		if got := st.Route(req); got != "GET /orders/{id}" {
			t.Errorf("refused request: route %q, want the lookup's", got)
		}
	}
	if lookups != 1 {
		t.Errorf("the lookup ran %d times for one refused request, want 1", lookups)
	}
}

// TestRouteLookupAlways: a lookup set to answer always names the route of
// a served request too, over the r.Pattern the router set.
func TestRouteLookupAlways(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {})
	var st *request.State
	lookup := &request.RouteLookup{Find: func(*http.Request) string { return "/api/orders/{id}" }, Always: true}
	h := request.NewHandler(request.Stack, mux, func(w http.ResponseWriter, r *http.Request, s *request.State, next http.Handler) {
		st = s
		s.SetRouteLookup(lookup)
		next.ServeHTTP(w, r)
	})
	req := httptest.NewRequest(http.MethodGet, "/api/orders/7", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got := st.Route(req); got != "/api/orders/{id}" {
		t.Errorf("route %q, want the lookup's over the router's /api/", got)
	}
}

// TestWrongOrderAtConstruction: a layer wrapped directly (or through other
// layers) around one that belongs outside it panics, naming both, what
// goes wrong and the order; the right order and the resolver in any
// position do not.
func TestWrongOrderAtConstruction(t *testing.T) {
	noop := func(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler) {
		next.ServeHTTP(w, r)
	}
	app := http.NotFoundHandler()
	layer := func(l request.Layer, next http.Handler) http.Handler { return request.NewHandler(l, next, noop) }

	right := layer(request.AccessLog, layer(request.Meter, layer(request.Authz, layer(request.Resolver, layer(request.Throttle, layer(request.Credentials, app))))))
	_ = layer(request.Stack, right)
	_ = layer(request.Resolver, layer(request.Authz, app)) // the resolver may go outside authz

	for _, tc := range []struct {
		name  string
		build func()
		want  []string
	}{
		{"access log inside authz", func() { layer(request.Authz, layer(request.AccessLog, app)) },
			[]string{"logging: logging.AccessLog runs inside authz.Middleware", "no access line", "tenancy.New"}},
		{"throttle outside authz", func() { layer(request.Throttle, layer(request.Authz, app)) },
			[]string{"authz: authz.Middleware runs inside (throttle.Limiter).Middleware", "refuses every request with 401", "tenancy.New"}},
		{"meter inside throttle, through the resolver", func() { layer(request.Throttle, layer(request.Resolver, layer(request.Meter, app))) },
			[]string{"meter: meter.Middleware runs inside (throttle.Limiter).Middleware", "not metered"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				for _, w := range tc.want {
					if !strings.Contains(msg, w) {
						t.Errorf("panic %q does not say %q", msg, w)
					}
				}
			}()
			tc.build()
		})
	}
}

// TestWrongOrderAtRunTime: layers with something else between them are
// found at the first request and reported once per pair, however many
// requests follow.
func TestWrongOrderAtRunTime(t *testing.T) {
	reported := requesttest.CaptureReports(t)

	noop := func(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler) {
		next.ServeHTTP(w, r)
	}
	between := func(next http.Handler) http.Handler { // a router or a user's middleware
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(w, r) })
	}
	h := request.NewHandler(request.Authz, between(request.NewHandler(request.AccessLog, http.NotFoundHandler(), noop)), noop)
	for range 5 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}
	if reports := reported(); len(reports) != 1 || !strings.Contains(reports[0], "logging.AccessLog runs inside authz.Middleware") {
		t.Errorf("reports = %q, want one naming the access log inside authz", reports)
	}
}

// TestWriterShapes: the State's writer counts what the handler writes and
// keeps exactly the optional interfaces of the writer it wraps: net/http's
// HTTP/1 writer, a plain one and any other (through httpsnoop).
func TestWriterShapes(t *testing.T) {
	type ifaces struct{ flusher, hijacker, readerFrom, pusher bool }
	check := func(w http.ResponseWriter) ifaces {
		_, f := w.(http.Flusher)
		_, h := w.(http.Hijacker)
		_, rf := w.(io.ReaderFrom)
		_, p := w.(http.Pusher)
		return ifaces{f, h, rf, p}
	}

	t.Run("net/http HTTP/1", func(t *testing.T) {
		var under, over ifaces
		var st *request.State
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			under = check(w)
			w2, _, s, _ := request.Enter(request.Stack, w, r)
			st, over = s, check(w2)
			w2.WriteHeader(http.StatusAccepted)
			io.Copy(w2, strings.NewReader("hello, ")) // ReadFrom
			io.WriteString(w2, "world")               // WriteString
			w2.(http.Flusher).Flush()                 // keeps the status
			if err := http.NewResponseController(w2).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("ResponseController through the wrapper: %v", err)
			}
		}))
		defer srv.Close()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if under != over {
			t.Errorf("interfaces %+v through the wrapper, %+v without", over, under)
		}
		if string(body) != "hello, world" || resp.StatusCode != http.StatusAccepted {
			t.Errorf("response %d %q", resp.StatusCode, body)
		}
		if st.Response.Status() != http.StatusAccepted || st.Response.Bytes() != int64(len("hello, world")) {
			t.Errorf("counted status %d, %d bytes", st.Response.Status(), st.Response.Bytes())
		}
	})

	t.Run("hijack", func(t *testing.T) {
		var st *request.State
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w2, _, s, _ := request.Enter(request.Stack, w, r)
			st = s
			conn, rw, err := w2.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\n\r\n")
			rw.Flush()
			conn.Close()
		}))
		defer srv.Close()
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if !strings.Contains(line, "101") || st.Response.Status() != http.StatusSwitchingProtocols {
			t.Errorf("hijacked: read %q, counted status %d", line, st.Response.Status())
		}
	})

	for _, tc := range []struct {
		name string
		w    http.ResponseWriter
	}{
		{"plain", plainWriter{httptest.NewRecorder()}},
		{"recorder (Flusher only)", httptest.NewRecorder()},
		{"HTTP/2-like (Flusher and Pusher)", pusherWriter{httptest.NewRecorder()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w2, _, st, _ := request.Enter(request.Stack, tc.w, httptest.NewRequest(http.MethodGet, "/", nil))
			if got, want := check(w2), check(tc.w); got != want {
				t.Errorf("interfaces %+v through the wrapper, %+v without", got, want)
			}
			w2.Write([]byte("abc"))
			w2.WriteHeader(http.StatusTeapot) // too late: the body went out as 200
			if st.Response.Status() != http.StatusOK || st.Response.Bytes() != 3 {
				t.Errorf("counted status %d, %d bytes; want 200, 3", st.Response.Status(), st.Response.Bytes())
			}
		})
	}
}

type plainWriter struct{ w http.ResponseWriter }

func (p plainWriter) Header() http.Header         { return p.w.Header() }
func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p plainWriter) WriteHeader(code int)        { p.w.WriteHeader(code) }

type pusherWriter struct{ *httptest.ResponseRecorder }

func (pusherWriter) Push(string, *http.PushOptions) error { return http.ErrNotSupported }

// TestRequestBodyCounted: what the handler reads of the body is counted,
// and the body is closed through the wrapper.
func TestRequestBodyCounted(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 1000)))
	_, r2, st, _ := request.Enter(request.Stack, httptest.NewRecorder(), r)
	io.CopyN(io.Discard, r2.Body, 600)
	r2.Body.Close()
	if got := st.RequestBytes(); got != 600 {
		t.Errorf("RequestBytes = %d, want 600", got)
	}
}

// TestInfoText: the text of the Info's own trace and span IDs is the one
// SetTraceText recorded, with no encoding; another pair is encoded once
// and reused while it is asked for again; IDs changed after SetTraceText
// are encoded anew, never answered with the old text; and concurrent
// lines (run with -race) read it all without a lock.
func TestInfoText(t *testing.T) {
	encoded := 0
	encode := func(tid [16]byte, sid [8]byte) string {
		encoded++
		return fmt.Sprintf("%x%x", tid, sid)
	}
	var info request.Info
	info.TraceID, info.SpanID = [16]byte{1}, [8]byte{2}
	info.SetTraceText("own")
	for range 3 {
		if got := info.Text(info.TraceID, info.SpanID, encode); got != "own" {
			t.Fatalf("own pair: Text = %q, want the recorded %q", got, "own")
		}
	}
	if encoded != 0 {
		t.Errorf("own pair encoded %d times, want 0", encoded)
	}

	other := [16]byte{3}
	want := fmt.Sprintf("%x%x", other, [8]byte{4})
	for range 3 {
		if got := info.Text(other, [8]byte{4}, encode); got != want {
			t.Fatalf("other pair: Text = %q, want %q", got, want)
		}
	}
	if encoded != 1 {
		t.Errorf("another pair asked for three times was encoded %d times, want 1", encoded)
	}
	if got := info.Text(info.TraceID, info.SpanID, encode); got != "own" {
		t.Errorf("own pair after another: Text = %q, want %q", got, "own")
	}

	info.SpanID = [8]byte{5}
	want = fmt.Sprintf("%x%x", info.TraceID, info.SpanID)
	if got := info.Text(info.TraceID, info.SpanID, encode); got != want {
		t.Errorf("IDs changed after SetTraceText: Text = %q, want %q", got, want)
	}

	var wg sync.WaitGroup
	safe := func(tid [16]byte, sid [8]byte) string { return fmt.Sprintf("%x%x", tid, sid) }
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				sid := [8]byte{byte(g), byte(i % 3)}
				if got, want := info.Text(other, sid, safe), safe(other, sid); got != want {
					t.Errorf("concurrent Text = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
