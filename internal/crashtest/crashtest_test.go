package crashtest_test

import (
	"errors"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/crashtest"
)

func TestKillAfterProgress(t *testing.T) {
	if crashtest.Mode() == "count" {
		for i := 1; ; i++ {
			crashtest.Report(strconv.Itoa(i))
			if i == 3 {
				// Stays alive until it is killed.
				time.Sleep(time.Hour)
			}
		}
	}
	c := crashtest.Start(t, "count")
	var got []string
	for len(got) < 3 {
		line, ok := c.Next()
		if !ok {
			t.Fatalf("the child exited after %v: %s", got, c.Stderr())
		}
		got = append(got, line)
	}
	c.Kill()
	if line, ok := c.Next(); ok {
		t.Errorf("a line after the kill: %q", line)
	}
	var exit *exec.ExitError
	if err := c.Wait(); !errors.As(err, &exit) || exit.Exited() {
		t.Errorf("Wait = %v, want a process killed by a signal", err)
	}
	if got[0] != "1" || got[2] != "3" {
		t.Errorf("lines %v, want 1 2 3", got)
	}
}
