// Package crashtest runs a test's own binary as a child process, so that a
// test can kill it (SIGKILL) at a moment of its choosing and look at what
// it left behind: the usual Go pattern of re-executing the test binary
// with an environment variable that selects a helper mode.
//
// The test calls [Mode] first: in the child it returns the mode the parent
// asked for, and the test runs the helper instead of its body. The child
// reports its progress with [Report], one line at a time, through a pipe;
// the parent reads the lines with [Child.Next], so that it waits on what
// the child has done, never on the clock.
//
//	func TestCrash(t *testing.T) {
//		if crashtest.Mode() == "adder" {
//			runAdder() // reports with crashtest.Report, never returns
//		}
//		c := crashtest.Start(t, "adder")
//		for line, ok := c.Next(); ok && line != "ready"; line, ok = c.Next() {
//		}
//		c.Kill()
//		...
//	}
package crashtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// modeVar names the environment variable that carries the mode to the
// child.
const modeVar = "TENANCY_CRASHTEST_MODE"

// progressFD is the child's file descriptor of the progress pipe: the
// first of exec.Cmd.ExtraFiles.
const progressFD = 3

// Mode returns the helper mode this process was started in by [Start], or
// "" in a process started otherwise (the parent).
func Mode() string { return os.Getenv(modeVar) }

var (
	reportMu sync.Mutex
	reportW  *os.File
)

// Report writes line to the parent, in a child started by [Start]. Each
// call is one write of one line, so that a line the parent reads is whole
// even when the child is killed in the middle of the next. It panics in a
// process that is not such a child.
func Report(line string) {
	reportMu.Lock()
	defer reportMu.Unlock()
	if reportW == nil {
		if Mode() == "" {
			panic("crashtest: Report in a process not started by crashtest.Start")
		}
		reportW = os.NewFile(progressFD, "crashtest-progress")
	}
	if _, err := reportW.WriteString(strings.ReplaceAll(line, "\n", " ") + "\n"); err != nil {
		// The parent is gone: nobody is left to report to.
		os.Exit(2)
	}
}

// Child is a running child process.
type Child struct {
	t        testing.TB
	cmd      *exec.Cmd
	lines    *bufio.Scanner
	progress *os.File
	stderr   *strings.Builder
	waitOnce sync.Once
	waitErr  error
}

// Start runs the test binary again as a child that runs only the
// top-level test t, in mode, with env added to this process's
// environment. The child is killed, if still running, when the test ends.
func Start(t testing.TB, mode string, env ...string) *Child {
	t.Helper()
	if mode == "" {
		t.Fatal("crashtest: Start needs a mode")
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skipf("crashtest: a progress pipe to a child needs exec.Cmd.ExtraFiles, which %s does not have", runtime.GOOS)
	}
	name, _, _ := strings.Cut(t.Name(), "/")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(name)+"$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(append(os.Environ(), modeVar+"="+mode), env...)
	cmd.ExtraFiles = []*os.File{w}
	stderr := &strings.Builder{}
	cmd.Stdout = io.Discard
	cmd.Stderr = &limitedWriter{b: stderr, n: 64 << 10}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("crashtest: starting the child: %v", err)
	}
	w.Close() // the child's end
	c := &Child{t: t, cmd: cmd, progress: r, stderr: stderr}
	c.lines = bufio.NewScanner(r)
	c.lines.Buffer(make([]byte, 4096), 1<<20)
	t.Cleanup(func() {
		c.Kill()
		r.Close()
	})
	return c
}

// Next returns the next line the child reported, waiting for it; false
// once the child has exited (or was killed) and every line was read.
func (c *Child) Next() (string, bool) {
	if c.lines.Scan() {
		return c.lines.Text(), true
	}
	return "", false
}

// Kill kills the child with SIGKILL, at once, and waits for it to exit.
// The lines it reported before stay readable with Next.
func (c *Child) Kill() {
	kill(c.cmd)
	c.Wait()
}

// Wait waits for the child to exit and returns its error (an
// *exec.ExitError for a child that was killed or failed).
func (c *Child) Wait() error {
	c.waitOnce.Do(func() { c.waitErr = c.cmd.Wait() })
	return c.waitErr
}

// Stderr returns the first 64 KiB the child wrote to its standard error,
// for the message of a test that failed because of it.
func (c *Child) Stderr() string {
	c.Wait()
	return c.stderr.String()
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
	n  int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// String makes a Child print as its process.
func (c *Child) String() string { return fmt.Sprintf("child %d", c.cmd.Process.Pid) }
