//go:build !unix

package testservers

import "errors"

var errNoPause = errors.New("testservers: pausing a server needs SIGSTOP, which this system lacks")

// Pause is not supported without SIGSTOP.
func (s *Server) Pause() error { return errNoPause }

// Resume is not supported without SIGCONT.
func (s *Server) Resume() error { return errNoPause }
