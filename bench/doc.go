// Package bench measures tenancy beside what a team would otherwise
// assemble from popular parts, on the same machine in the same run.
//
// It is a module of its own, so that the anchors it compares against
// (auth0/go-jwt-middleware, go-chi/httprate, throttled, tollbooth, otelhttp
// and the OpenTelemetry SDK) never enter the library's go.mod. Everything
// here is in _test.go files, except the two commands: cmd/report, which
// turns benchmark and wrk output into RESULTS.md, and cmd/bare, the
// service without middleware that bench/http.sh loads beside
// examples/orders. See README.md.
package bench
