// Package tenancyecho puts the tenancy stack into an echo (v4) server,
// with echo's route paths in the access log, the meter and the refusals.
//
//	e := echo.New()
//	mw, err := tenancyecho.New(
//		tenancy.WithAccessLog(logger),
//		tenancy.WithMeter(recorder),
//		tenancy.WithAuthz(verifier),
//		tenancy.WithThrottle(limiter),
//	)
//	if err != nil {
//		return err
//	}
//	e.Use(mw)
//	e.GET("/orders/:id", getOrder)
//
// Use it with e.Use, as the first middleware: echo runs those after it has
// routed the request, so a request the stack refuses has its route too.
// Middleware given to e.Pre runs before routing and outside the stack.
// Handlers find the tenant in the request's context:
// tenant.FromContext(c.Request().Context()).
//
// An error the handler returns is handled inside the stack, by
// c.Error (the server's HTTPErrorHandler), so that the access line and
// the meter have the status the client got; the middleware then returns
// nil, and middleware outside it sees no error.
//
// It lives in a module of its own so that services without echo do not
// build it.
package tenancyecho

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/tenancykit/tenancy"
)

// New returns the stack of the parts opts name (see tenancy.New) as echo
// middleware. Its route is echo's path ("/orders/:id"); it is "" for a
// path no route matches and for a method its route does not serve (405),
// and the path given to RouteNotFound for a request that handler serves.
// A route given with tenancy.WithRoute takes precedence.
//
// The handler and the middleware after it run inside the stack, which
// sees what they write through c.Response() (a Response of this package's
// making while they run), their errors, as c.Error writes them, and their
// panics. A request the stack refuses runs none of them: the stack writes
// the refusal through echo's Response, which is then committed. The stack
// is built here, once, and the middleware is safe for concurrent use.
func New(opts ...tenancy.Option) (echo.MiddlewareFunc, error) {
	s, err := tenancy.New(append([]tenancy.Option{tenancy.WithRoute(route)}, opts...)...)
	if err != nil {
		return nil, err
	}
	h := s.Wrap(http.HandlerFunc(serve))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			call := &call{Context: c.Request().Context(), echo: c, next: next}
			h.ServeHTTP(c.Response(), c.Request().WithContext(call))
			return nil
		}
	}, nil
}

// call is one request on its way through the stack. It is the context of
// the request the stack is given, so that the stack's handler and its
// route lookup find the echo.Context there, without a context.WithValue
// of its own.
type call struct {
	context.Context
	echo     echo.Context
	next     echo.HandlerFunc
	response echo.Response // c.Response() inside the stack
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

// route is echo's path for r, which its router matched before the
// middleware ran.
func route(r *http.Request) string {
	call := callFrom(r)
	if call == nil {
		return ""
	}
	// For a path whose routes serve other methods only, the router gives
	// the path of one of them, and the methods they serve for the Allow
	// header: that request has no route.
	if call.echo.Get(echo.ContextKeyHeaderAllow) != nil {
		return ""
	}
	return call.echo.Path()
}

// serve is the handler inside the stack: it runs the handler after the
// middleware with the stack's request and a Response around the stack's
// writer, which writes through echo's own (so that echo's Response has
// the status, the size and the commitment once the stack returns).
func serve(w http.ResponseWriter, r *http.Request) {
	call := callFrom(r)
	c := call.echo
	outer := c.Response()
	call.response = *echo.NewResponse(w, c.Echo())
	call.response.Status = http.StatusOK // as echo starts every Response
	c.SetRequest(r)
	c.SetResponse(&call.response)
	defer c.SetResponse(outer)
	if err := call.next(c); err != nil {
		c.Error(err)
	}
}
