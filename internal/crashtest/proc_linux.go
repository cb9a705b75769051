//go:build linux

package crashtest

import (
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel kill the child should the test binary die
// without running its cleanups (a timeout, a signal).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func kill(cmd *exec.Cmd) { _ = cmd.Process.Signal(syscall.SIGKILL) }
