// Package tenancygin puts the tenancy stack into a gin engine, with gin's
// route patterns in the access log, the meter and the refusals.
//
//	engine := gin.New()
//	mw, err := tenancygin.New(
//		tenancy.WithAccessLog(logger),
//		tenancy.WithMeter(recorder),
//		tenancy.WithAuthz(verifier),
//		tenancy.WithThrottle(limiter),
//	)
//	if err != nil {
//		return err
//	}
//	engine.Use(mw)
//	engine.GET("/orders/:id", getOrder)
//
// Use it as the engine's first middleware, before the routes: gin gives a
// route the engine's middleware as they are when the route is added. Gin
// routes a request before its middleware runs, so a request the stack
// refuses has its route too. Handlers find the tenant in the request's
// context: tenant.FromContext(c.Request.Context()).
//
// Gin's engine middleware also runs for a path with no route, so the
// stack sees and logs those 404s (and 405s, with
// HandleMethodNotAllowed), with the route "". Gin writes its default
// "404 page not found" body after the middleware has returned, so the
// access line counts no bytes for it; a handler given to engine.NoRoute
// runs inside the stack and is counted. The redirects gin answers itself
// (RedirectTrailingSlash, RedirectFixedPath) run no middleware, and the
// stack does not see them.
//
// It lives in a module of its own so that services without gin do not
// build it.
package tenancygin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/tenancykit/tenancy"
)

// New returns the stack of the parts opts name (see tenancy.New) as gin
// middleware. Its route is gin's pattern ("/orders/:id"), "" for a path
// with no route; a route given with tenancy.WithRoute takes precedence.
//
// The handlers after it run inside the stack, which sees what they write
// through c.Writer (a writer of this package while they run) and their
// panics; a request the stack refuses runs none of them (the middleware
// calls c.Abort). The stack is built here, once, and the middleware is
// safe for concurrent use.
func New(opts ...tenancy.Option) (gin.HandlerFunc, error) {
	s, err := tenancy.New(append([]tenancy.Option{tenancy.WithRoute(route)}, opts...)...)
	if err != nil {
		return nil, err
	}
	h := s.Wrap(http.HandlerFunc(serve))
	return func(c *gin.Context) {
		call := &call{Context: c.Request.Context(), gin: c}
		h.ServeHTTP(c.Writer, c.Request.WithContext(call))
		if !call.served {
			c.Abort()
		}
	}, nil
}

// call is one request on its way through the stack. It is the context of
// the request the stack is given, so that the stack's handler and its
// route lookup find the gin.Context there, without a context.WithValue of
// its own.
type call struct {
	context.Context
	gin    *gin.Context
	served bool // the stack let the request through to the handlers
	writer responseWriter
}

// callKey is the context key a *call answers with itself.
type callKey struct{}

func (c *call) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func callFrom(r *http.Request) *call {
	c, _ := r.Context().Value(callKey{}).(*call)
	return c
}

// route is gin's pattern for r: the one its router matched before the
// middleware ran, "" for none.
func route(r *http.Request) string {
	if c := callFrom(r); c != nil {
		return c.gin.FullPath()
	}
	return ""
}

// serve is the handler inside the stack: it runs the gin handlers after
// the middleware with the stack's request and, through a writer of ours,
// the stack's writer.
func serve(w http.ResponseWriter, r *http.Request) {
	call := callFrom(r)
	c := call.gin
	call.served = true
	outer := c.Writer
	call.writer = responseWriter{w: w, outer: outer, size: notWritten, status: outer.Status()}
	c.Request = r
	c.Writer = &call.writer
	defer func() { c.Writer = outer }()
	c.Next()
	// Gin sends a status no handler sent after all of them have returned:
	// send it here, so that the stack sees it (gin's 404 and 405 are set
	// on its writer before the middleware runs, and start ours).
	call.writer.WriteHeaderNow()
}

// notWritten is a responseWriter's size before the header is sent.
const notWritten = -1

// responseWriter is c.Writer while the handlers run inside the stack. It
// behaves as gin's own writer does — WriteHeader only sets the status,
// which goes out with the first byte, a flush or WriteHeaderNow — and
// writes through w, the stack's writer, so that the stack sees every
// status and byte.
type responseWriter struct {
	w      http.ResponseWriter // the stack's
	outer  gin.ResponseWriter  // c.Writer before ours, asked for its Pusher
	size   int                 // bytes of body written, notWritten before the header is sent
	status int
}

var _ gin.ResponseWriter = (*responseWriter)(nil)

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

// WriteHeader sets the status the header will be sent with; once it has
// been sent, the status cannot change.
func (rw *responseWriter) WriteHeader(code int) {
	if code > 0 && !rw.Written() {
		rw.status = code
	}
}

func (rw *responseWriter) WriteHeaderNow() {
	if !rw.Written() {
		rw.size = 0
		rw.w.WriteHeader(rw.status)
	}
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	rw.WriteHeaderNow()
	n, err := rw.w.Write(b)
	rw.size += n
	return n, err
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	rw.WriteHeaderNow()
	n, err := io.WriteString(rw.w, s)
	rw.size += n
	return n, err
}

func (rw *responseWriter) Status() int   { return rw.status }
func (rw *responseWriter) Size() int     { return rw.size }
func (rw *responseWriter) Written() bool { return rw.size != notWritten }

// Flush sends the header, when it has not gone out, and what is buffered.
func (rw *responseWriter) Flush() {
	rw.WriteHeaderNow()
	http.NewResponseController(rw.w).Flush() // a writer that cannot flush has nothing buffered to send
}

// Hijack hands over the connection, as gin's writer does: before any byte
// of the body was written.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if rw.size > 0 {
		return nil, nil, errHijackAfterBody
	}
	if rw.size == notWritten {
		rw.size = 0 // nothing may be written after a hijack
	}
	return http.NewResponseController(rw.w).Hijack()
}

var errHijackAfterBody = errors.New("tenancygin: cannot hijack: the response body has been written")

// CloseNotify is the stack's writer's, else gin's: gin.ResponseWriter
// requires it.
func (rw *responseWriter) CloseNotify() <-chan bool {
	//lint:ignore SA1019 gin.ResponseWriter requires CloseNotify
	if cn, ok := rw.w.(http.CloseNotifier); ok {
		return cn.CloseNotify()
	}
	return rw.outer.CloseNotify()
}

// Pusher is the stack's writer's http.Pusher, else gin's writer's (nil
// when the connection cannot push). Pushes are responses of their own,
// which the stack does not see.
func (rw *responseWriter) Pusher() http.Pusher {
	if p, ok := rw.w.(http.Pusher); ok {
		return p
	}
	return rw.outer.Pusher()
}

// Unwrap returns the stack's writer, for http.ResponseController.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }
