package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// AsyncWriter is an io.Writer for log output that never makes its callers
// wait for the destination: a slow or stopped stdout, a full pipe, a
// collector that does not read. Write copies the line into a bounded
// buffer and returns; one goroutine writes the buffer out. When the buffer
// is full, the line is dropped whole and counted (see [AsyncWriter.Dropped]
// and the tenancy.logging.dropped metric), and once the destination takes
// lines again, a line saying how many were dropped is written first.
//
// Each Write is kept whole: handlers of log/slog write one record per
// Write, so a dropped record is never half written. An AsyncWriter is safe
// for concurrent use. Call [AsyncWriter.Shutdown] before the process
// exits, to write out what is buffered.
type AsyncWriter struct {
	w       io.Writer
	maxWait time.Duration
	report  func(dropped uint64) []byte
	counter metric.Int64Counter
	stream  metric.MeasurementOption // the "stream" attribute

	mu      sync.Mutex
	ready   sync.Cond // signalled when lines are added or shutdown begins
	buf     []byte    // a ring
	head, n int       // where the buffered bytes start, and how many
	closed  bool
	unrep   uint64        // dropped since the last report
	space   chan struct{} // a token when the writer frees space
	done    chan struct{} // closed when the writing goroutine ends

	dropped atomic.Uint64
	errs    atomic.Uint64
}

// AsyncOption configures an [AsyncWriter].
type AsyncOption func(*asyncConfig)

type asyncConfig struct {
	size    int
	maxWait time.Duration
	report  func(dropped uint64) []byte
	mp      metric.MeterProvider
	name    string
}

// defaultAsyncBufferSize is the buffer of an AsyncWriter, 1 MiB.
const defaultAsyncBufferSize = 1 << 20

// WithBufferSize sets how many bytes of lines wait for the destination
// before new lines are dropped. Default (and 0) 1 MiB.
func WithBufferSize(n int) AsyncOption { return func(c *asyncConfig) { c.size = n } }

// WithMaxWait makes a Write that finds the buffer full wait up to d for
// room before it drops its line: for an audit stream, where a short wait
// is better than a lost event. Default 0: drop at once, so that a request
// never waits for its log lines.
func WithMaxWait(d time.Duration) AsyncOption { return func(c *asyncConfig) { c.maxWait = d } }

// WithDropReport sets the line written when the destination takes lines
// again after some were dropped. Default: a JSON line at level WARN,
// {"level":"WARN","msg":"logging: log lines dropped while the output was
// not keeping up","dropped":N,"stream":NAME}.
func WithDropReport(f func(dropped uint64) []byte) AsyncOption {
	return func(c *asyncConfig) { c.report = f }
}

// WithStreamName names the stream in the drop report and the metric's
// "stream" attribute, such as "access" or "audit". Default "log".
func WithStreamName(name string) AsyncOption { return func(c *asyncConfig) { c.name = name } }

// WithAsyncMeterProvider sets where the tenancy.logging.dropped counter is
// reported. Default (and nil) the global otel.GetMeterProvider().
func WithAsyncMeterProvider(mp metric.MeterProvider) AsyncOption {
	return func(c *asyncConfig) { c.mp = mp }
}

// NewAsyncWriter returns an AsyncWriter that writes to w and starts its
// goroutine. It returns an error for a negative size or wait.
func NewAsyncWriter(w io.Writer, opts ...AsyncOption) (*AsyncWriter, error) {
	if w == nil {
		return nil, errors.New("logging: NewAsyncWriter needs a writer")
	}
	c := asyncConfig{name: "log"}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	switch {
	case c.size < 0:
		return nil, fmt.Errorf("logging: WithBufferSize: %d is negative", c.size)
	case c.size == 0:
		c.size = defaultAsyncBufferSize
	}
	if c.maxWait < 0 {
		return nil, fmt.Errorf("logging: WithMaxWait: %v is negative", c.maxWait)
	}
	if c.name == "" {
		c.name = "log"
	}
	if c.report == nil {
		name := c.name
		c.report = func(n uint64) []byte {
			return fmt.Appendf(nil, `{"level":"WARN","msg":"logging: log lines dropped while the output was not keeping up","dropped":%d,"stream":%q}`+"\n", n, name)
		}
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	counter, err := c.mp.Meter("github.com/tenancykit/tenancy/logging").Int64Counter("tenancy.logging.dropped",
		metric.WithDescription("Log lines dropped because the output did not keep up."),
		metric.WithUnit("{line}"))
	if err != nil {
		return nil, fmt.Errorf("logging: metric: %w", err)
	}
	a := &AsyncWriter{
		w:       w,
		maxWait: c.maxWait,
		report:  c.report,
		counter: counter,
		stream:  metric.WithAttributeSet(attribute.NewSet(attribute.String("stream", c.name))),
		buf:     make([]byte, c.size),
		space:   make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	a.ready.L = &a.mu
	go a.run()
	return a, nil
}

// Write queues a copy of p, whole, and returns len(p); p is dropped (and
// counted) when it does not fit, after waiting up to WithMaxWait for room.
// It returns an error only after Shutdown.
func (a *AsyncWriter) Write(p []byte) (int, error) {
	var deadline time.Time
	for {
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			return 0, errors.New("logging: write to an AsyncWriter that was shut down")
		}
		if len(p) <= len(a.buf)-a.n {
			a.put(p)
			a.mu.Unlock()
			a.ready.Signal()
			return len(p), nil
		}
		a.mu.Unlock()
		if a.maxWait <= 0 || len(p) > len(a.buf) {
			break
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(a.maxWait)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-a.space:
		case <-t.C:
		}
		t.Stop()
	}
	a.drop()
	return len(p), nil
}

// put copies p into the ring; a.mu is held and p fits.
func (a *AsyncWriter) put(p []byte) {
	tail := (a.head + a.n) % len(a.buf)
	k := copy(a.buf[tail:], p)
	copy(a.buf, p[k:])
	a.n += len(p)
}

func (a *AsyncWriter) drop() {
	a.dropped.Add(1)
	a.mu.Lock()
	a.unrep++
	a.mu.Unlock()
	a.ready.Signal() // the report waits for the writer
	a.counter.Add(context.Background(), 1, a.stream)
}

// run writes the buffered lines out until shutdown has drained the
// buffer. It copies what is buffered into a batch of its own and frees the
// ring at once, then writes the batch in one Write: a batch is whole
// lines, whatever the ring's wrap, so another writer of the same
// destination (an os.File serialises each Write) never cuts a line, and a
// drop report goes between lines, never inside one.
func (a *AsyncWriter) run() {
	defer close(a.done)
	batch := make([]byte, 0, len(a.buf))
	for {
		a.mu.Lock()
		for a.n == 0 && !a.closed && a.unrep == 0 {
			a.ready.Wait()
		}
		if a.n == 0 && a.closed && a.unrep == 0 {
			a.mu.Unlock()
			return
		}
		end := min(a.head+a.n, len(a.buf))
		batch = append(batch[:0], a.buf[a.head:end]...)
		batch = append(batch, a.buf[:a.n-(end-a.head)]...)
		a.head, a.n = 0, 0
		unrep := a.unrep
		a.unrep = 0
		a.mu.Unlock()
		select {
		case a.space <- struct{}{}:
		default:
		}

		if unrep > 0 {
			// The drops came after these lines were buffered, or while
			// the last batch was being written: reported before the
			// lines that follow them.
			batch = append(batch, a.report(unrep)...)
		}
		a.write(batch)
	}
}

// write writes p whole, counting a failure; a failed write is not retried,
// so that a broken destination cannot hold the buffer.
func (a *AsyncWriter) write(p []byte) {
	for len(p) > 0 {
		n, err := a.w.Write(p)
		if err != nil {
			a.errs.Add(1)
			return
		}
		p = p[n:]
	}
}

// Dropped returns how many lines were dropped since the writer was made.
func (a *AsyncWriter) Dropped() uint64 { return a.dropped.Load() }

// Buffered returns how many bytes wait to be written.
func (a *AsyncWriter) Buffered() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// Shutdown stops taking lines and waits until the buffered ones are
// written, or ctx is done (a destination that reads nothing never
// drains). Writes after it fail. It returns ctx's error when the buffer
// was not drained in time.
func (a *AsyncWriter) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.ready.Broadcast()
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("logging: AsyncWriter: %d bytes not written: %w", a.Buffered(), ctx.Err())
	}
}
