// Package tenancychi puts the tenancy stack into a chi router, with chi's
// route patterns in the access log, the meter and the refusals.
//
//	r := chi.NewRouter()
//	mw, err := tenancychi.New(r,
//		tenancy.WithAccessLog(logger),
//		tenancy.WithMeter(recorder),
//		tenancy.WithAuthz(verifier),
//		tenancy.WithThrottle(limiter),
//	)
//	if err != nil {
//		return err
//	}
//	r.Use(mw)
//	r.Get("/orders/{id}", getOrder)
//
// Use it as the router's first middleware. It also works around the
// router, mw(r), at the cost of a second route lookup per request. It
// lives in a module of its own so that services without chi do not build
// it.
package tenancychi

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/tenancykit/tenancy"
)

// New returns the stack of the parts opts name (see tenancy.New) as
// middleware for router. Its route is chi's pattern ("/orders/{id}"),
// also for a request refused before chi routed it; a route given with
// tenancy.WithRoute takes precedence.
func New(router chi.Routes, opts ...tenancy.Option) (func(http.Handler) http.Handler, error) {
	if router == nil {
		return nil, errors.New("tenancychi: New needs the chi router the stack serves")
	}
	route := func(r *http.Request) string { return Route(router, r) }
	s, err := tenancy.New(append([]tenancy.Option{tenancy.WithRoute(route)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return s.Wrap, nil
}

// Route returns the pattern of the route router serves r with: the one chi
// matched when it has routed r, else the one it would match. It is "" for
// a path with no route.
func Route(router chi.Routes, r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	return router.Find(chi.NewRouteContext(), r.Method, path)
}
