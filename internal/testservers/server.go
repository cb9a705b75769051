package testservers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/syncbuf"
)

// RequireEnv is the environment variable that turns a missing server from a
// skip into a failure. scripts/test (and so CI) sets it to 1.
const RequireEnv = "TENANCY_REQUIRE_SERVERS"

// ErrNotInstalled matches (with errors.Is) the error that a Start function
// returns when the server's program cannot be found; that error's text names
// what to install. Check turns it into a skip unless Required reports true.
var ErrNotInstalled = errors.New("testservers: server not installed")

const (
	// startTimeout bounds how long a server may take to answer after it
	// has been started.
	startTimeout = 15 * time.Second
	// pollInterval is the pause between two readiness probes.
	pollInterval = 10 * time.Millisecond
	// probeTimeout bounds one readiness probe.
	probeTimeout = time.Second
	// portAttempts is how often a first start is tried on a new free port
	// when the server reports that the port it was given is taken.
	portAttempts = 5
	// waitDelay bounds how long Stop waits for the output pipe after the
	// process has been killed.
	waitDelay = 2 * time.Second
)

// Required reports whether RequireEnv is set to 1, that is whether a missing
// server must fail the test instead of skipping it.
func Required() bool {
	return os.Getenv(RequireEnv) == "1"
}

// Check handles the error of a Start function inside a test: nothing when err
// is nil; t.Skip when the server is not installed and Required is false;
// t.Fatal otherwise. It is meant for packages that start one server in
// TestMain and keep the error for each test to check.
func Check(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrNotInstalled) && !Required() {
		t.Skip(err)
	}
	t.Fatal(err)
}

// AfterRun wraps m (a *testing.M) so that Run runs the tests and then calls
// stops in reverse order. Handing the result to goleak.VerifyTestMain stops
// the package's shared servers before goroutines are checked:
//
//	goleak.VerifyTestMain(testservers.AfterRun(m, stop))
func AfterRun(m interface{ Run() int }, stops ...func()) interface{ Run() int } {
	return afterRun{m: m, stops: stops}
}

type afterRun struct {
	m     interface{ Run() int }
	stops []func()
}

func (a afterRun) Run() int {
	defer func() {
		for i := len(a.stops) - 1; i >= 0; i-- {
			if a.stops[i] != nil {
				a.stops[i]()
			}
		}
	}()
	return a.m.Run()
}

// notInstalled returns an error that says msg and is ErrNotInstalled.
func notInstalled(msg string) error {
	return notInstalledError(msg)
}

type notInstalledError string

func (e notInstalledError) Error() string { return string(e) }

func (e notInstalledError) Is(target error) bool { return target == ErrNotInstalled }

// startForTest runs start for the testing.TB helpers: it turns start's error
// into a skip or a failure, and registers the stop at t's cleanup.
func startForTest[S any](t testing.TB, start func() (S, func(), error)) S {
	t.Helper()
	s, stop, err := start()
	Check(t, err)
	t.Cleanup(stop)
	return s
}

// lookPath finds name on PATH or at one of the extra paths.
func lookPath(name string, extra ...string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, p := range extra {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testservers: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("testservers: find a free port: %w", err)
	}
	return port, nil
}

// Server is a server's child process, listening on a fixed loopback port. It
// can be stopped in the middle of a test and started again on the same port,
// so that clients find it again when they reconnect. The server types embed
// it; only the Start functions and helpers of this package make one.
type Server struct {
	name  string                                       // for messages, e.g. "redis-server"
	port  int                                          // set by the first start
	argv  func(port int) []string                      // command line for a port
	env   func(port int) []string                      // added to the environment, "K=V"; nil adds none
	dir   string                                       // working directory of the process
	probe func(ctx context.Context, addr string) error // returns nil once the server answers

	mu   sync.Mutex
	run  *run   // the running process; nil when stopped
	last string // output of the last run that ended
}

// run is one process of a server.
type run struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when cmd.Wait has returned
	err  error         // cmd.Wait's result, set before done is closed
}

// errPortInUse marks a start that failed because the port was taken.
var errPortInUse = errors.New("port in use")

// Port returns the loopback port the server listens on.
func (s *Server) Port() int {
	return s.port
}

func (s *Server) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// startFirst starts the server on a free port, trying new ports when the one
// chosen was taken in the meantime.
func (s *Server) startFirst() error {
	var err error
	for range portAttempts {
		if s.port, err = freePort(); err != nil {
			return err
		}
		if err = s.Start(); !errors.Is(err, errPortInUse) {
			return err
		}
	}
	return err
}

// Start starts the server again on the port it had, after Stop. Clients that
// reconnect find it at the same address. A server that runs already is left
// as it is. A server without persistence starts empty.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		select {
		case <-s.run.done:
			s.reap()
		default:
			return nil
		}
	}
	args := s.argv(s.port)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.dir
	if s.env != nil {
		cmd.Env = append(os.Environ(), s.env(s.port)...)
	}
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = waitDelay
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testservers: start %s: %w", s.name, err)
	}
	r := &run{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	s.run = r
	if err := s.waitReady(r); err != nil {
		s.stopLocked()
		err = fmt.Errorf("testservers: %s on %s: %w\n--- %s output ---\n%s--- end of output ---",
			s.name, s.addr(), err, s.name, s.last)
		if portTaken(s.last) {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return err
	}
	return nil
}

// waitReady polls the probe until it succeeds, the process ends or the start
// timeout passes.
func (s *Server) waitReady(r *run) error {
	deadline := time.Now().Add(startTimeout)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last error
	for {
		select {
		case <-r.done:
			if r.err != nil {
				return fmt.Errorf("exited before it answered: %w", r.err)
			}
			return errors.New("exited before it answered")
		case <-timer.C:
		}
		last = s.probeOnce(r)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("did not answer within %v: %w", startTimeout, last)
		}
		timer.Reset(pollInterval)
	}
}

// probeOnce runs the probe once, giving up when the process ends.
func (s *Server) probeOnce(r *run) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-r.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := s.probe(ctx, s.addr())
	cancel()
	<-watched
	return err
}

// Stop kills the server's process and waits until it has ended, so that its
// port refuses connections. Start brings it back on the same port. Stop on a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart stops the server and starts it again on the same port.
func (s *Server) Restart() error {
	s.Stop()
	return s.Start()
}

// Running reports whether the server's process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil {
		return false
	}
	select {
	case <-s.run.done:
		return false
	default:
		return true
	}
}

// Output returns what the server's current process, or the last one, wrote
// to stdout and stderr.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return s.run.out.String()
	}
	return s.last
}

func (s *Server) stopLocked() {
	if s.run == nil {
		return
	}
	select {
	case <-s.run.done:
	default:
		kill(s.run.cmd)
		<-s.run.done
	}
	s.reap()
}

// reap forgets the ended process, keeping its output.
func (s *Server) reap() {
	s.last = s.run.out.String()
	s.run = nil
}

// portTaken reports whether a server's output says its port was taken.
func portTaken(out string) bool {
	return strings.Contains(out, "Address already in use") || strings.Contains(out, "EADDRINUSE")
}

// syncBuffer collects output written while the test reads it.
type syncBuffer = syncbuf.Buffer
