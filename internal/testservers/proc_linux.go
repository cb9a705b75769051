//go:build linux

package testservers

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in a process group of its own, so that kill
// reaches anything it spawned, and has the kernel kill it should the test
// binary die without running its cleanups (a timeout, a signal).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// kill kills the server's process group.
func kill(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}
