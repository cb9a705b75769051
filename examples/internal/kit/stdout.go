package kit

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/tenancykit/tenancy/logging"
)

// AuditMaxWait is how long an audit event waits for room in its stream's
// buffer before it is dropped (and counted, and reported): long enough to
// ride out a brief stall of stdout, short enough not to hold a refused
// request for long.
const AuditMaxWait = 300 * time.Millisecond

// Stdout is a service's standard output as its JSON lines reach it. Log
// lines (the application's and the access log's) and audit events each go
// through a logging.AsyncWriter of their own, so that a slow or stopped
// stdout never holds a request: a line that finds its stream's buffer full
// is dropped whole, counted in tenancy.logging.dropped, and reported in a
// line once stdout takes lines again; an audit event first waits up to
// AuditMaxWait for room. Write itself waits for stdout, for lines that
// must not be dropped (orders' usage records).
//
// Every line reaches stdout whole, one Write at a time, whichever stream
// it comes from. A Stdout is safe for concurrent use.
type Stdout struct {
	w lockedWriter
	// Log takes the application's and the access log's lines.
	Log *logging.AsyncWriter
	// Audit takes the audit events.
	Audit *logging.AsyncWriter
}

// NewStdout returns the Stdout of w (os.Stdout in main) and starts its
// streams' goroutines; call Shutdown to end them. opts apply to both
// streams after the defaults (tests set a small buffer).
func NewStdout(w io.Writer, opts ...logging.AsyncOption) (*Stdout, error) {
	s := &Stdout{w: lockedWriter{w: w}}
	var err error
	s.Log, err = logging.NewAsyncWriter(&s.w, append([]logging.AsyncOption{
		logging.WithStreamName("log"),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	s.Audit, err = logging.NewAsyncWriter(&s.w, append([]logging.AsyncOption{
		logging.WithStreamName("audit"), logging.WithMaxWait(AuditMaxWait),
	}, opts...)...)
	if err != nil {
		s.Log.Shutdown(context.Background()) // nothing was written to it
		return nil, err
	}
	return s, nil
}

// Write writes p, whole lines, to stdout, and waits for it.
func (s *Stdout) Write(p []byte) (int, error) { return s.w.Write(p) }

// Shutdown writes out the lines the streams hold, waiting until ctx is
// done at most (a stdout that reads nothing never drains), and refuses
// their lines from then on. It returns an error naming what was not
// written.
func (s *Stdout) Shutdown(ctx context.Context) error {
	var errs []error
	for _, a := range []*logging.AsyncWriter{s.Log, s.Audit} {
		if err := a.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close is Shutdown within ShutdownTimeout. Once a call has drained the
// streams, later ones return nil at once.
func (s *Stdout) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// lockedWriter makes the Writes of several goroutines to w one at a time:
// each stream writes whole lines per Write, so lines from different
// streams never mix.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
