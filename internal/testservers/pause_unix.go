//go:build unix

package testservers

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// pauseTimeout bounds how long Pause waits for the process to stop.
const pauseTimeout = 5 * time.Second

// Pause stops the server's process group with SIGSTOP, as a hung host
// would be: its port still accepts connections, and nothing answers. It
// returns once the process has stopped. Resume continues it; Stop kills it
// paused or not.
func (s *Server) Pause() error {
	pid, err := s.pid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("testservers: pause %s: %w", s.name, err)
	}
	deadline := time.Now().Add(pauseTimeout)
	for !stopped(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("testservers: pause %s: the process did not stop within %v", s.name, pauseTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Resume continues a server paused by Pause, with SIGCONT. Resuming a
// server that is not paused does nothing.
func (s *Server) Resume() error {
	pid, err := s.pid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(-pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("testservers: resume %s: %w", s.name, err)
	}
	return nil
}

// pid returns the process ID of the running server, which leads its
// process group.
func (s *Server) pid() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil {
		return 0, errors.New("testservers: " + s.name + " is not running")
	}
	return s.run.cmd.Process.Pid, nil
}
