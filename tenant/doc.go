// Package tenant holds the value every other package of tenancy agrees on:
// the [Tenant] a request acts for, the ordered [Tiers] a service sells, and
// the per-request [Record] through which inner middleware tells outer
// middleware what it decided.
//
// A [Tenant] reaches the request context in one of two ways. Normally the
// authz package verifies a bearer token and calls [NewContext]; handlers then
// ask [FromContext] and never parse a token themselves. Where no token is
// involved (an internal hop behind a gateway that already verified, a
// subdomain per tenant), a [Resolver] finds the tenant and [Middleware] puts
// it in the context; [Chain] states which source wins and refuses a request
// whose sources disagree.
//
// Rejections are written as RFC 9457 problem documents by [WriteProblem], so
// that every middleware of this module answers in the same shape and never
// leaks Go error text to a client.
//
// This package imports no other package of the module.
//
//	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
//		t, ok := tenant.FromContext(r.Context())
//		if !ok {
//			// unreachable behind authz.Middleware or tenant.Require
//		}
//		orders := store.List(r.Context()) // the store reads the tenant too
//		...
//	})
package tenant
