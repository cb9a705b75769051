// Package servicetest runs an example service inside a test and reaches
// it over real HTTP: it starts the service's run function with an
// environment of the test's, waits until it listens, sends requests with a
// client of the test's own, reads its stdout as JSON lines, and stops it
// as SIGTERM would, checking that run returned nil.
//
// Only the examples' _test.go files import it.
package servicetest

import (
	"context"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
)

// Run starts a service: its run function, with the test's hooks bound,
// given the environment through getenv, its output, and ready, which it
// calls with the bound address once it accepts connections. It returns
// what run returns.
type Run func(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(addr string)) error

// Service is a service running in the test's process. Its methods may be
// called from the test's goroutines.
type Service struct {
	URL    string          // http://host:port
	Stdout *syncbuf.Buffer // what the service wrote on stdout
	Stderr *syncbuf.Buffer // what the service wrote on stderr
	Client *http.Client    // a client of the test's own, closed when it ends

	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned err
	err    error
}

// startTimeout bounds the wait for a service to serve: a failure bound,
// far above what a start takes.
const startTimeout = time.Minute

// Start runs the service with env as its environment until the test
// ends, and checks then that run returned nil. It fails the test if run
// returns before it serves, or does not serve within a minute.
func Start(t testing.TB, env map[string]string, run Run) *Service {
	t.Helper()
	return start(t, env, run, nil)
}

// StartStalled is Start with a stdout that reads nothing until the
// returned writer's Resume: a collector that stopped reading. Resume runs
// when the test ends, at the latest, before the service is stopped.
func StartStalled(t testing.TB, env map[string]string, run Run) (*Service, *StalledWriter) {
	t.Helper()
	var stalled *StalledWriter
	s := start(t, env, run, func(stdout io.Writer) io.Writer {
		stalled = Stall(stdout)
		return stalled
	})
	t.Cleanup(stalled.Resume) // registered after Start's, so it runs first
	return s, stalled
}

// start is Start with the service's stdout put in front of Stdout by
// wrap, when not nil.
func start(t testing.TB, env map[string]string, run Run, wrap func(io.Writer) io.Writer) *Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		Stdout: new(syncbuf.Buffer),
		Stderr: new(syncbuf.Buffer),
		Client: NewClient(t),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	var stdout io.Writer = s.Stdout
	if wrap != nil {
		stdout = wrap(s.Stdout)
	}
	ready := make(chan string, 1)
	getenv := func(name string) string { return env[name] }
	go func() {
		defer close(s.done)
		s.err = run(ctx, getenv, stdout, s.Stderr, func(addr string) { ready <- addr })
	}()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case <-s.done:
		cancel()
		t.Fatalf("run returned before serving: %v\nstderr:\n%s", s.err, s.Stderr)
	case <-time.After(startTimeout):
		cancel()
		t.Fatalf("run did not serve within %v\nstderr:\n%s", startTimeout, s.Stderr)
	}
	t.Cleanup(func() {
		s.Cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("run returned %v, want nil", err)
		}
	})
	return s
}

// Cancel ends run's context, as SIGTERM does: the service stops accepting
// connections and drains the requests in flight.
func (s *Service) Cancel() { s.cancel() }

// Done is closed once run has returned.
func (s *Service) Done() <-chan struct{} { return s.done }

// Wait waits for run to return and returns what it returned.
func (s *Service) Wait() error {
	<-s.done
	return s.err
}

// Stop ends the service as SIGTERM does, and fails the test unless run
// returns nil. Every line the service wrote is in Stdout afterwards.
func (s *Service) Stop(t testing.TB) {
	t.Helper()
	s.Cancel()
	if err := s.Wait(); err != nil {
		t.Fatalf("run returned %v, want nil", err)
	}
}

// IssuerEnv returns env with the variables that make a service verify the
// tokens of iss and listen on a free loopback port; env's own values win.
func IssuerEnv(iss *authztest.Issuer, env map[string]string) map[string]string {
	all := map[string]string{
		"ADDR":          "127.0.0.1:0",
		"AUTH_ISSUER":   iss.URL(),
		"AUTH_AUDIENCE": iss.Audience(),
	}
	maps.Copy(all, env)
	return all
}

// NewClient returns a client with its own connections, closed when the
// test ends, so that no connection outlives the test (goleak).
func NewClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// Response is a whole response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends method path to the service with token (none when empty), body
// as JSON (none when empty) and the headers of header, and returns the
// whole response.
func (s *Service) Do(t testing.TB, method, path, token, body string, header http.Header) Response {
	t.Helper()
	return do(t, s.Client, s.URL, method, path, token, body, header)
}

// Do is [Service.Do] for a service in a process of its own.
func (p *Process) Do(t testing.TB, method, path, token, body string, header http.Header) Response {
	t.Helper()
	return do(t, p.Client, p.URL, method, path, token, body, header)
}

// do sends method path to the service at base with c.
func do(t testing.TB, c *http.Client, base, method, path, token, body string, header http.Header) Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	maps.Copy(req.Header, header)
	return Send(t, c, req)
}

// Send sends req with c and returns the whole response, failing the test
// if there is none.
func Send(t testing.TB, c *http.Client, req *http.Request) Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
