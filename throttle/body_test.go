package throttle_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// bodyServer is a real HTTP server with a tier capped at maxConcurrent
// requests in flight, whose tenant is named by an X-Tenant header (authz's
// part in a service). Its handler reads the whole body and answers with
// its length; for /hold it then waits until release is closed, or the
// request's context ends.
type bodyServer struct {
	*httptest.Server
	firstRead chan string   // the path of a request whose body was first read
	release   chan struct{} // lets /hold requests finish
	ctxErr    chan error    // what /hold saw of its context
}

func newBodyServer(t *testing.T, maxConcurrent int, opts ...throttle.MiddlewareOption) *bodyServer {
	t.Helper()
	ts := tenant.MustTiers("solo")
	l, err := throttle.New(ts, map[string]throttle.Limits{"solo": {Rate: 1000, Burst: 1000, MaxConcurrent: maxConcurrent}})
	if err != nil {
		t.Fatal(err)
	}
	s := &bodyServer{firstRead: make(chan string, 16), release: make(chan struct{}), ctxErr: make(chan error, 4)}
	handler := l.Middleware(opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/hold" {
			select {
			case <-s.release:
				s.ctxErr <- r.Context().Err()
			case <-r.Context().Done():
				s.ctxErr <- r.Context().Err()
			}
		}
		fmt.Fprint(w, len(b))
	}))
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn, err := tenant.New(r.Header.Get("X-Tenant"), ts.MustLookup("solo"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r = r.WithContext(tenant.NewContext(r.Context(), tn))
		if r.Body != http.NoBody {
			r.Body = &signalBody{ReadCloser: r.Body, path: r.URL.Path, first: s.firstRead}
		}
		handler.ServeHTTP(w, r)
	}))
	s.Config.ReadTimeout = 30 * time.Second // the server of the issue
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// signalBody says when its body is first read: by the throttle reading
// ahead, or by a handler that holds a slot.
type signalBody struct {
	io.ReadCloser
	path  string
	first chan string
	once  sync.Once
}

func (b *signalBody) Read(p []byte) (int, error) {
	b.once.Do(func() { b.first <- b.path })
	return b.ReadCloser.Read(p)
}

// trickler is a client that sends its headers and then its body a byte at
// a time, every gap, until it has sent all or been answered.
type trickler struct {
	conn net.Conn
	resp chan *http.Response
	stop chan struct{}
	done sync.WaitGroup
}

func trickle(t *testing.T, addr, path, tenantID string, length int, head []byte, gap time.Duration) *trickler {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trickler{conn: conn, resp: make(chan *http.Response, 1), stop: make(chan struct{})}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: test\r\nX-Tenant: %s\r\nContent-Length: %d\r\n\r\n", path, tenantID, length)
	conn.Write(head)
	tr.done.Go(func() {
		tick := time.NewTicker(gap) // the client's own pace
		defer tick.Stop()
		for sent := len(head); sent < length; sent++ {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}
	})
	tr.done.Go(func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%s: reading the response: %v", path, err)
			close(tr.resp)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		tr.resp <- resp
	})
	t.Cleanup(tr.close)
	return tr
}

func (tr *trickler) close() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.conn.Close()
	tr.done.Wait()
}

func post(t *testing.T, url, tenantID, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Tenant", tenantID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSlowBodyHoldsNoSlot: clients trickling their bodies to a tenant
// capped at two requests in flight, on a server that waits 30 s for a
// request, do not lock the tenant out: they hold no slot while their
// bodies arrive, and are refused with 408 when the bodies do not arrive in
// time. (With the slot taken as the request arrived, the tenant's next
// request was refused for concurrency until the server gave up on them.)
func TestSlowBodyHoldsNoSlot(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := newBodyServer(t, 2, throttle.WithBodyTimeout(timeout))
	addr := srv.Listener.Addr().String()

	began := time.Now()
	slow := []*trickler{
		trickle(t, addr, "/slow", "acme", 1000, []byte("ab"), 20*time.Millisecond),
		trickle(t, addr, "/slow", "acme", 1000, []byte("ab"), 20*time.Millisecond),
	}
	for range slow {
		<-srv.firstRead // each is inside the throttle, reading its body
	}
	resp, body := post(t, srv.URL+"/fast", "acme", `{"item":"anvil"}`)
	if resp.StatusCode != http.StatusOK || body != "16" {
		t.Fatalf("the tenant's request while two bodies trickle: %d %q, want 200 \"16\"", resp.StatusCode, body)
	}
	<-srv.firstRead

	for i, tr := range slow {
		resp := <-tr.resp
		if resp == nil {
			t.Fatalf("trickler %d: no response", i)
		}
		waited := time.Since(began)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("trickler %d: status %d, want 408", i, resp.StatusCode)
		}
		var p tenant.Problem
		json.NewDecoder(resp.Body).Decode(&p)
		if p.Type != tenant.ProblemType("body-timeout") {
			t.Errorf("trickler %d: problem type %q, want body-timeout", i, p.Type)
		}
		if !resp.Close || resp.Header.Get("RateLimit") != "" {
			t.Errorf("trickler %d: Connection: close %v, RateLimit %q; want the connection closed and no fields", i, resp.Close, resp.Header.Get("RateLimit"))
		}
		// Refused at the body timeout, not at the server's 30 s.
		if waited < timeout || waited > 10*timeout {
			t.Errorf("trickler %d: answered after %v, want about %v", i, waited, timeout)
		}
	}
}

// TestSlowBodyInTime: a body that trickles in before the timeout reaches
// the handler whole, and the request is not cancelled when the deadline
// the throttle set for the body passes while the handler still runs.
func TestSlowBodyInTime(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := newBodyServer(t, 1, throttle.WithBodyTimeout(timeout))
	tr := trickle(t, srv.Listener.Addr().String(), "/hold", "acme", 10, []byte("ab"), 10*time.Millisecond)
	<-srv.firstRead
	// Past the body's deadline, the handler still holds its request.
	select {
	case err := <-srv.ctxErr:
		t.Fatalf("the handler's context ended before it was done: %v", err)
	case <-time.After(3 * timeout):
	}
	close(srv.release)
	if err := <-srv.ctxErr; err != nil {
		t.Errorf("the handler's context: %v, want it alive", err)
	}
	resp := <-tr.resp
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "10" {
		t.Errorf("status %d, body %q; want 200 and the 10 bytes read", resp.StatusCode, b)
	}
}

// TestSlowBodyPacedBeyondBuffer: a body larger than the buffer takes the
// slot once the buffer is full; the rest must keep the pace (a buffer's
// worth per timeout) or the handler's read fails, and the slot is free
// again within a timeout of the client stalling.
func TestSlowBodyPacedBeyondBuffer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := newBodyServer(t, 1, throttle.WithBodyTimeout(timeout), throttle.WithBodyBuffer(1024))
	// 1 KiB at once, then a byte a minute: the slot is taken, then freed.
	head := []byte(strings.Repeat("a", 1024+10))
	stalled := time.Now()
	tr := trickle(t, srv.Listener.Addr().String(), "/big", "acme", 1<<20, head, time.Minute)
	<-srv.firstRead
	resp := <-tr.resp
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("stalled after its buffer: status %d, want the handler's 400 for a failed read", resp.StatusCode)
	}
	if d := time.Since(stalled); d > 10*timeout {
		t.Errorf("the stalled body held its slot %v, want about %v", d, timeout)
	}
	if resp, _ := post(t, srv.URL+"/after", "acme", "{}"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the stalled body: status %d, want 200", resp.StatusCode)
	}

	// A large body that keeps the pace is read whole.
	resp, body := post(t, srv.URL+"/large", "acme", strings.Repeat("b", 100_000))
	if resp.StatusCode != http.StatusOK || body != strconv.Itoa(100_000) {
		t.Errorf("a large body at full speed: %d %q", resp.StatusCode, body)
	}
}

// TestBodyBufferOff: WithBodyBuffer(-1) takes the slot as the request
// arrives, for bodies that stream by design.
func TestBodyBufferOff(t *testing.T) {
	srv := newBodyServer(t, 1, throttle.WithBodyBuffer(-1))
	tr := trickle(t, srv.Listener.Addr().String(), "/stream", "acme", 100, []byte("ab"), 5*time.Millisecond)
	if path := <-srv.firstRead; path != "/stream" {
		t.Fatalf("first read of %s", path)
	}
	// The handler reads it, holding the tenant's only slot.
	resp, _ := post(t, srv.URL+"/fast", "acme", "{}")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("while a streaming body holds the slot: status %d, want 429", resp.StatusCode)
	}
	if resp := <-tr.resp; resp.StatusCode != http.StatusOK {
		t.Errorf("the streaming body: status %d, want 200", resp.StatusCode)
	}
}

// TestBodyReadAheadErrors: what a body read ahead returns after its bytes
// is what the handler would have read from it: the error of a body cut
// short, or of a body over http.MaxBytesReader's limit.
func TestBodyReadAheadErrors(t *testing.T) {
	ts := tenant.MustTiers("solo")
	l, err := throttle.New(ts, map[string]throttle.Limits{"solo": {Rate: 1000, Burst: 1000, MaxConcurrent: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	h := l.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got = append(got, fmt.Sprintf("%q %v", b, err))
	}))
	acme := mustTenant(t, "acme", ts.MustLookup("solo"))
	for _, body := range []io.Reader{
		io.MultiReader(strings.NewReader("abc"), errReader{io.ErrUnexpectedEOF}),
		strings.NewReader("0123456789"),
	} {
		r := httptest.NewRequest(http.MethodPost, "/", body)
		w := httptest.NewRecorder()
		r.Body = http.MaxBytesReader(w, r.Body, 5)
		r = r.WithContext(tenant.NewContext(context.Background(), acme))
		h.ServeHTTP(w, r)
	}
	want := []string{`"abc" unexpected EOF`, `"01234" http: request body too large`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the handler read %q, want %q", got, want)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
