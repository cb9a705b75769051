//go:build !unix

package testservers

import "os/exec"

func setProcAttr(*exec.Cmd) {}

// kill kills the server's process.
func kill(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
}
