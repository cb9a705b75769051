package servicetest

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childEnv marks a process started by [StartProcess]: the test binary run
// again to be the service.
const childEnv = "SERVICETEST_CHILD"

// RunChild runs main, the service's own, when this test binary was
// started by [StartProcess], and then exits 0 (main exits 1 itself when
// the service fails); otherwise it returns at once. Call it first in
// TestMain.
func RunChild(main func()) {
	if os.Getenv(childEnv) == "" {
		return
	}
	main()
	os.Exit(0)
}

// Process is a service running in a process of its own, the test binary
// run again with [RunChild] in TestMain: it gets real signals (SIGKILL,
// SIGTERM, SIGHUP) and dies as the service would.
type Process struct {
	URL    string       // http://host:port
	Stdout *Lines       // what the process wrote on stdout
	Stderr *Lines       // what the process wrote on stderr
	Client *http.Client // a client of the test's own
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has ended
	state  *os.ProcessState
}

// listening is the line a service writes on stderr once it listens.
var listening = regexp.MustCompile(`listening on (http://\S+)\n`)

// StartProcess starts the service in a process of its own with env as its
// whole environment (besides PATH, HOME and TMPDIR), and waits until it
// listens: until it writes "listening on http://host:port" on stderr. The
// process is killed when the test ends, if it is still running.
func StartProcess(t testing.TB, env map[string]string) *Process {
	t.Helper()
	p := &Process{Stdout: newLines(), Stderr: newLines(), Client: NewClient(t), done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0]) // no arguments: a service takes none
	p.cmd.Env = []string{childEnv + "=1"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			p.cmd.Env = append(p.cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	m, ok := p.Stderr.waitMatch(listening, startTimeout, p.done)
	if !ok {
		t.Fatalf("the service did not listen\nstderr:\n%s", p.Stderr)
	}
	p.URL = m[1]
	return p
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits for the process to end, for at most d, and returns how it
// ended; it fails the test if it is still running after d.
func (p *Process) Wait(t testing.TB, d time.Duration) *os.ProcessState {
	t.Helper()
	select {
	case <-p.done:
		return p.state
	case <-time.After(d):
		t.Fatalf("the service still runs %v later\nstderr:\n%s", d, p.Stderr)
		return nil
	}
}

// Stop ends the process as a deployment does, with SIGTERM, and fails the
// test unless it exits with status 0 within a minute.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	if st := p.Wait(t, startTimeout); !st.Success() {
		t.Fatalf("the service ended with %v, want status 0\nstderr:\n%s", st, p.Stderr)
	}
}

// WaitFor waits until the process has written s, for at most a minute,
// and fails the test if it has not, or if the process ended first.
func (l *Lines) WaitFor(t testing.TB, s string) {
	t.Helper()
	if _, ok := l.waitMatch(regexp.MustCompile(regexp.QuoteMeta(s)), startTimeout, nil); !ok {
		t.Fatalf("%q not written within %v; got:\n%s", s, startTimeout, l)
	}
}

// Lines is what a process writes, safe for concurrent use, with a way to
// wait for a line to appear.
type Lines struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced at each write
}

func newLines() *Lines { return &Lines{changed: make(chan struct{})} }

// Write appends b.
func (l *Lines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(b)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(b), nil
}

// String returns everything written so far.
func (l *Lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count returns how many times s was written.
func (l *Lines) Count(s string) int { return strings.Count(l.String(), s) }

// waitMatch waits until re matches what was written, for at most d or
// until stop is closed.
func (l *Lines) waitMatch(re *regexp.Regexp, d time.Duration, stop <-chan struct{}) ([]string, bool) {
	deadline := time.After(d)
	for {
		l.mu.Lock()
		m := re.FindStringSubmatch(l.b.String())
		changed := l.changed
		l.mu.Unlock()
		if m != nil {
			return m, true
		}
		select {
		case <-changed:
		case <-stop:
			return nil, false
		case <-deadline:
			return nil, false
		}
	}
}
