package request

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/felixge/httpsnoop"
)

// writers are the State's wrappers of the response writer, one of which
// counts what the handler writes. The two shapes nearly every server hands
// a handler — net/http's HTTP/1 writer (Flusher, Hijacker, ReaderFrom,
// CloseNotifier) and a writer with no optional interface at all (tests,
// adapters) — have a wrapper of their own inside the State, with exactly
// those interfaces, so wrapping costs no allocation. Any other shape goes
// through httpsnoop, which keeps whatever set of interfaces it has.
type writers struct {
	// h1 is the HTTP/1 wrapper; for a plain writer, the plainWriter it
	// embeds is handed out alone, with the methods of a plain writer only.
	h1 h1Writer
}

// h1 is the method set of net/http's HTTP/1 response writer, less
// Pusher, which only its HTTP/2 writer has.
type h1 interface {
	http.ResponseWriter
	http.Flusher
	http.Hijacker
	io.ReaderFrom
	http.CloseNotifier //lint:ignore SA1019 kept so that the wrapper hides none of the writer's methods
}

func (ws *writers) wrap(w http.ResponseWriter, m *Response) http.ResponseWriter {
	_, push := w.(http.Pusher)
	switch {
	case !push && isH1(w):
		ws.h1 = h1Writer{plainWriter{w: w, m: m}}
		return &ws.h1
	case !push && isPlain(w):
		ws.h1.plainWriter = plainWriter{w: w, m: m}
		return &ws.h1.plainWriter
	}
	return httpsnoop.Wrap(w, hooks(m))
}

func isH1(w http.ResponseWriter) bool {
	_, ok := w.(h1)
	return ok
}

func isPlain(w http.ResponseWriter) bool {
	switch w.(type) {
	case http.Flusher, http.Hijacker, io.ReaderFrom, http.CloseNotifier: //lint:ignore SA1019 see h1
		return false
	}
	return true
}

// plainWriter counts what goes through a writer with no optional
// interface. Unwrap lets http.ResponseController reach the writer.
type plainWriter struct {
	w http.ResponseWriter
	m *Response
}

func (p *plainWriter) Header() http.Header { return p.w.Header() }

func (p *plainWriter) WriteHeader(code int) {
	p.w.WriteHeader(code)
	p.m.header(code)
}

func (p *plainWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.m.wrote(int64(n))
	return n, err
}

func (p *plainWriter) WriteString(s string) (int, error) {
	n, err := io.WriteString(p.w, s)
	p.m.wrote(int64(n))
	return n, err
}

func (p *plainWriter) Unwrap() http.ResponseWriter { return p.w }

// h1Writer counts what goes through net/http's HTTP/1 writer, keeping its
// optional interfaces.
type h1Writer struct{ plainWriter }

func (h *h1Writer) Flush() {
	h.w.(http.Flusher).Flush()
	h.m.header(http.StatusOK) // a flush sends the header: 200 unless set
}

func (h *h1Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := h.w.(http.Hijacker).Hijack()
	if err == nil {
		h.m.hijacked.Store(true)
	}
	return conn, rw, err
}

func (h *h1Writer) ReadFrom(src io.Reader) (int64, error) {
	n, err := h.w.(io.ReaderFrom).ReadFrom(src)
	h.m.wrote(n)
	return n, err
}

//lint:ignore SA1019 see h1
func (h *h1Writer) CloseNotify() <-chan bool { return h.w.(http.CloseNotifier).CloseNotify() }

// hooks count into m through httpsnoop, for the other writers.
func hooks(m *Response) httpsnoop.Hooks {
	return httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				next(code)
				m.header(code)
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(b []byte) (int, error) {
				n, err := next(b)
				m.wrote(int64(n))
				return n, err
			}
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) {
				n, err := next(src)
				m.wrote(n)
				return n, err
			}
		},
		Flush: func(next httpsnoop.FlushFunc) httpsnoop.FlushFunc {
			return func() {
				next()
				m.header(http.StatusOK)
			}
		},
		Hijack: func(next httpsnoop.HijackFunc) httpsnoop.HijackFunc {
			return func() (net.Conn, *bufio.ReadWriter, error) {
				conn, rw, err := next()
				if err == nil {
					m.hijacked.Store(true)
				}
				return conn, rw, err
			}
		},
	}
}
