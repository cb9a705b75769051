package throttle

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// A client that trickles its request body must not hold one of its
// tenant's concurrency slots while it does: two such requests would lock a
// tenant capped at two out for as long as the server waits for bodies.
// So, for a tier with a concurrency cap, the middleware reads the first
// bytes of the body (up to [WithBodyBuffer], 64 KiB by default) before it
// takes a slot, under a deadline ([WithBodyTimeout], 10 s by default, and
// never past the server's ReadTimeout): a body that does not arrive in
// time is refused with 408 and spends nothing, and one that does reaches
// the handler from memory. The rest of a larger body is read by the
// handler with the slot held, but under the same pace: every further
// buffer's worth must arrive within the timeout, or the handler's read
// fails with a timeout. A slot is therefore held for at most the timeout
// per buffer of body beyond the first, and not at all while the first
// arrives.

// Defaults of the body options.
const (
	defaultBodyBuffer  = 64 << 10
	defaultBodyTimeout = 10 * time.Second
)

// WithBodyBuffer sets how much of a request body the middleware reads
// before it takes a concurrency slot, for tiers with MaxConcurrent: the
// pace a body must keep (this many bytes per [WithBodyTimeout]) and the
// memory a request may hold before its slot. A negative n takes the slot
// as the request arrives, for routes whose bodies stream by design.
// Default (also for 0) 64 KiB.
func WithBodyBuffer(n int) MiddlewareOption {
	return func(c *middlewareConfig) { c.bodyBuffer = n }
}

// WithBodyTimeout sets how long the first [WithBodyBuffer] bytes of a
// request body may take to arrive before the request is refused with 408,
// for tiers with MaxConcurrent, and how long each further buffer's worth
// may take while the handler reads it. The server's ReadTimeout, when
// shorter, bounds it. Default (also for 0) 10 s; a negative d panics.
func WithBodyTimeout(d time.Duration) MiddlewareOption {
	return func(c *middlewareConfig) { c.bodyTimeout = d }
}

// errBodyTimeout is what readBody returns for a body that did not arrive
// in time.
var errBodyTimeout = errors.New("throttle: request body too slow")

// readBody reads up to c.bodyBuffer bytes of r's body before the request
// may take a slot, and returns the body the handler is to read instead: those
// bytes, then the rest, paced. It returns errBodyTimeout when the body
// does not arrive in time. Any other error of the body is kept for the
// handler to read, after the bytes that came before it, as it would have
// read it.
func readBody(w http.ResponseWriter, r *http.Request, c *middlewareConfig) (io.ReadCloser, error) {
	rc := http.NewResponseController(w)
	start := time.Now() // deadlines are the network's: real time, not the limiter's clock
	timeout := c.bodyTimeout
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.ReadTimeout > 0 {
		timeout = min(timeout, srv.ReadTimeout)
	}
	deadlines := rc.SetReadDeadline(start.Add(timeout)) == nil

	limit := int64(c.bodyBuffer)
	initial := int64(4 << 10)
	if r.ContentLength > 0 {
		initial = min(r.ContentLength, initial)
	}
	// The buffer grows as the bytes arrive, so that a client that
	// announces a large body and sends nothing holds no memory for it.
	buf := make([]byte, 0, min(initial, limit))
	var err error
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit))
			copy(grown, buf)
			buf = grown
		}
		var n int
		n, err = r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
		if int64(len(buf)) == r.ContentLength {
			// All there: one more read sees the end, which net/http needs
			// to see before it reuses the connection.
			var one [1]byte
			if _, err = r.Body.Read(one[:]); err == nil {
				err = errors.New("throttle: request body longer than its Content-Length")
			}
			break
		}
	}
	switch {
	case err == io.EOF:
		if deadlines {
			// Nothing more to read: no deadline may cancel the request
			// while the handler runs (net/http's HTTP/1 server clears it
			// itself when it sees the end; others may not).
			rc.SetReadDeadline(time.Time{})
		}
		return &replayBody{head: buf, body: r.Body}, nil
	case isTimeout(err):
		return nil, errBodyTimeout
	case err != nil:
		if deadlines {
			rc.SetReadDeadline(time.Time{})
		}
		return &replayBody{head: buf, err: err, body: r.Body}, nil
	}
	// The buffer is full and more may come: the rest at the same pace.
	rest := &pacedBody{body: r.Body, rc: rc, deadlines: deadlines, every: limit, timeout: timeout}
	return &replayBody{head: buf, rest: rest, body: r.Body}, nil
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// replayBody is a body read ahead: head, then the error the body returned
// after it (io.EOF by default), or the rest.
type replayBody struct {
	head []byte
	err  error
	rest io.Reader
	body io.Closer
}

func (b *replayBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	if b.rest != nil {
		return b.rest.Read(p)
	}
	if b.err != nil {
		return 0, b.err
	}
	return 0, io.EOF
}

func (b *replayBody) Close() error { return b.body.Close() }

// pacedBody reads the rest of a body with a read deadline that moves on
// by timeout each time every more bytes have arrived.
type pacedBody struct {
	body      io.Reader
	rc        *http.ResponseController
	deadlines bool
	every     int64
	timeout   time.Duration
	since     int64 // bytes since the deadline was set
	armed     bool
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if b.deadlines && (!b.armed || b.since >= b.every) {
		b.rc.SetReadDeadline(time.Now().Add(b.timeout))
		b.armed, b.since = true, 0
	}
	n, err := b.body.Read(p)
	b.since += int64(n)
	if err != nil && b.deadlines && !isTimeout(err) {
		// The end, or the client gone: no deadline may cancel the
		// request while the handler runs.
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
