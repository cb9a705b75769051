package servicetest

import (
	"io"
	"sync"
)

// StalledWriter is a stdout whose reader has stopped: every Write blocks
// until Resume, then goes on to the writer underneath. [StartStalled]
// gives one to a service.
type StalledWriter struct {
	w      io.Writer
	resume chan struct{}
	once   sync.Once
}

// Stall returns a StalledWriter in front of w.
func Stall(w io.Writer) *StalledWriter {
	return &StalledWriter{w: w, resume: make(chan struct{})}
}

// Write waits for Resume, then writes p to the writer underneath.
func (s *StalledWriter) Write(p []byte) (int, error) {
	<-s.resume
	return s.w.Write(p)
}

// Resume lets every Write through, those waiting and those to come. Calls
// after the first do nothing.
func (s *StalledWriter) Resume() { s.once.Do(func() { close(s.resume) }) }
