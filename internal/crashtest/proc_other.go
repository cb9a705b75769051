//go:build !linux

package crashtest

import "os/exec"

func setProcAttr(*exec.Cmd) {}

// kill kills the child: SIGKILL on Unix, TerminateProcess on Windows.
func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
