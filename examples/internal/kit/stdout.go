package kit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

	log, audit *wholeLines
}

// NewStdout returns the Stdout of w (os.Stdout in main) and starts its
// streams' goroutines; call Shutdown to end them. opts apply to both
// streams after the defaults (tests set a small buffer).
func NewStdout(w io.Writer, opts ...logging.AsyncOption) (*Stdout, error) {
	s := &Stdout{w: lockedWriter{w: w}}
	s.log = &wholeLines{w: &s.w, stream: "log"}
	s.audit = &wholeLines{w: &s.w, stream: "audit"}
	var err error
	s.Log, err = logging.NewAsyncWriter(s.log, append([]logging.AsyncOption{
		logging.WithStreamName("log"), logging.WithDropReport(s.log.dropped),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	s.Audit, err = logging.NewAsyncWriter(s.audit, append([]logging.AsyncOption{
		logging.WithStreamName("audit"), logging.WithDropReport(s.audit.dropped), logging.WithMaxWait(AuditMaxWait),
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
	if len(errs) == 0 {
		// Drained: the streams' last lines are whole, so nothing is left
		// over but what a Write without a newline put there.
		for _, l := range []*wholeLines{s.log, s.audit} {
			l.flush()
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

// lockedWriter makes the Writes of several goroutines to w one at a time,
// so that lines from different streams never mix.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// wholeLines passes on only whole lines of what one AsyncWriter writes to
// it: the AsyncWriter hands its buffer over in runs that end inside a line
// where its ring wraps, and writes its report of dropped lines between two
// runs. Here the rest of a line waits for its end, and the report for the
// line in progress to end, so that neither cuts into a line of stdout.
type wholeLines struct {
	mu         sync.Mutex
	w          io.Writer
	stream     string
	partial    []byte // the start of a line whose end has not come
	unreported uint64 // lines dropped and not yet reported
}

func (l *wholeLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := bytes.LastIndexByte(p, '\n') + 1
	var err error
	switch {
	case end == 0:
		l.partial = append(l.partial, p...)
		return len(p), nil
	case len(l.partial) == 0:
		_, err = l.w.Write(p[:end])
	default:
		_, err = l.w.Write(append(l.partial, p[:end]...))
	}
	// Between the lines just written and the start of the next: where a
	// report may go.
	l.partial = l.partial[:0]
	l.reportLocked()
	l.partial = append(l.partial, p[end:]...)
	return len(p), err
}

// dropped is the AsyncWriter's WithDropReport: it keeps the count for the
// next line boundary, and gives the AsyncWriter nothing to write itself.
func (l *wholeLines) dropped(n uint64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unreported += n
	l.reportLocked()
	return nil
}

// reportLocked writes the report of dropped lines if a line has just
// ended; l.mu is held. The line is the logging package's default report.
func (l *wholeLines) reportLocked() {
	if l.unreported == 0 || len(l.partial) > 0 {
		return
	}
	fmt.Fprintf(l.w, `{"level":"WARN","msg":"logging: log lines dropped while the output was not keeping up","dropped":%d,"stream":%q}`+"\n",
		l.unreported, l.stream)
	l.unreported = 0
}

// flush writes out a line left without its newline, ended.
func (l *wholeLines) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.w.Write(append(l.partial, '\n'))
		l.partial = l.partial[:0]
	}
	l.reportLocked()
}
