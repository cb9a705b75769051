package kinesissink_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/tenancykit/tenancy/internal/testservers"
)

// pause stops the process group of the kinesalite srv with SIGSTOP, as a
// hung host would be: its port still accepts connections, and nothing
// answers. It returns the function that continues it with SIGCONT, which
// the test's end also calls. internal/testservers runs each server in a
// process group of its own, led by the process found here by its command
// line.
func pause(t *testing.T, srv *testservers.KinesaliteServer) (resume func()) {
	t.Helper()
	pid := serverPID(t, srv.Port())
	pgid, err := syscall.Getpgid(pid)
	if err != nil || pgid != pid {
		t.Fatalf("kinesalite (pid %d) does not lead a process group of its own (pgid %d, %v)", pid, pgid, err)
	}
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP kinesalite: %v", err)
	}
	resumed := false
	resume = func() {
		if resumed {
			return
		}
		resumed = true
		if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
			t.Errorf("SIGCONT kinesalite: %v", err)
		}
	}
	t.Cleanup(resume)
	return resume
}

// serverPID returns the process whose command line holds kinesalite and
// "--port port".
func serverPID(t *testing.T, port int) int {
	t.Helper()
	paths, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte(strconv.Itoa(port))
	for _, p := range paths {
		cmdline, err := os.ReadFile(p)
		if err != nil {
			continue // ended since
		}
		args := bytes.Split(bytes.TrimSuffix(cmdline, []byte{0}), []byte{0})
		i := slices.IndexFunc(args, func(a []byte) bool { return string(a) == "--port" })
		if i < 0 || i+1 == len(args) || !bytes.Equal(args[i+1], want) || !bytes.Contains(cmdline, []byte("kinesalite")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	t.Fatalf("no kinesalite process listening on port %d", port)
	return 0
}
