package bench_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	jwtmiddleware "github.com/auth0/go-jwt-middleware/v2"
	"github.com/auth0/go-jwt-middleware/v2/validator"
	"github.com/go-chi/httprate"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The anchor is what a team assembles without tenancy from popular parts:
// auth0's JWT middleware, go-chi/httprate keyed by the tenant claim,
// otelhttp for traces and HTTP metrics, and a slog JSON access log written
// by hand. It does less than our stack (no problem documents, no
// per-tier limits, no metering for billing, no redaction), so it is a
// lower bound of what the same features cost assembled by hand.

// tenantClaims are the custom claims the anchor's validator decodes, with
// the claim names of the fixture's tokens (Cognito's).
type tenantClaims struct {
	TenantID string `json:"custom:tenantId"`
	Tier     string `json:"custom:tenantTier"`
}

func (c *tenantClaims) Validate(context.Context) error {
	if c.TenantID == "" {
		return errors.New("no tenant claim")
	}
	return nil
}

// newAuth0Validator checks the fixture's tokens as tenancy's verifier
// does: RS256 with the issuer's key, issuer, audience, expiry, and the
// tenant claim. The key function is static, the cheapest there is (a JWKS
// caching provider would add a cache lookup per token).
func newAuth0Validator(tb testing.TB, f *fixture) *validator.Validator {
	tb.Helper()
	key := f.iss.PublicKey()
	v, err := validator.New(
		func(context.Context) (any, error) { return key, nil },
		validator.RS256,
		f.iss.URL(),
		[]string{f.iss.Audience()},
		validator.WithCustomClaims(func() validator.CustomClaims { return &tenantClaims{} }),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// anchorClaims returns the tenant and user of the request's validated
// token, as put in the context by the auth0 middleware.
func anchorClaims(r *http.Request) (tenantID, userID string) {
	c, ok := r.Context().Value(jwtmiddleware.ContextKey{}).(*validator.ValidatedClaims)
	if !ok {
		return "", ""
	}
	if tc, ok := c.CustomClaims.(*tenantClaims); ok {
		tenantID = tc.TenantID
	}
	return tenantID, c.RegisteredClaims.Subject
}

// anchorTenantKey keys httprate by the tenant claim.
func anchorTenantKey(r *http.Request) (string, error) {
	id, _ := anchorClaims(r)
	if id == "" {
		return "", errors.New("no tenant")
	}
	return id, nil
}

// statusWriter is the ResponseWriter wrapper every hand-written access log
// has.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// anchorAccessLog is the access log a team writes on log/slog: one JSON
// line per request with the fields tenancy's access log has, the tenant
// from the validated claims and the trace from otelhttp's span.
func anchorAccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r)
			logAnchorLine(r.Context(), logger, r, sw.status, sw.bytes, time.Since(start))
		})
	}
}

// logAnchorLine writes the anchor's access line.
func logAnchorLine(ctx context.Context, logger *slog.Logger, r *http.Request, status int, bytes int64, d time.Duration) {
	tenantID, userID := anchorClaims(r)
	sc := trace.SpanContextFromContext(ctx)
	logger.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("remote_ip", r.RemoteAddr),
		slog.String("tenant_id", tenantID),
		slog.String("user_id", userID),
		slog.String("trace_id", sc.TraceID().String()),
		slog.String("span_id", sc.SpanID().String()),
	)
}

// discardSpans is a span exporter that drops what it is given: the SDK
// does all its work (sampling, recording, the batch queue) but no I/O,
// like the JSON handlers on io.Discard.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// otelProviders returns the OpenTelemetry SDK as a service configures it,
// a batching tracer provider that samples every root span and a meter
// provider, with exporters that drop everything; both shut down when tb
// ends.
func otelProviders(tb testing.TB) (trace.TracerProvider, metric.MeterProvider) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tb.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	return tp, mp
}

// newAnchorStack wraps app as the issue describes the anchor: auth0 JWT →
// httprate keyed by the tenant claim → otelhttp → slog access log → app.
// With nil providers otelhttp uses OpenTelemetry's global ones, which are
// no-ops until a service installs the SDK.
func newAnchorStack(tb testing.TB, f *fixture, app http.Handler, tp trace.TracerProvider, mp metric.MeterProvider) http.Handler {
	tb.Helper()
	logger := slog.New(discardJSON())
	var otelOpts []otelhttp.Option
	if tp != nil {
		otelOpts = append(otelOpts, otelhttp.WithTracerProvider(tp))
	}
	if mp != nil {
		otelOpts = append(otelOpts, otelhttp.WithMeterProvider(mp))
	}
	var h http.Handler = app
	h = anchorAccessLog(logger)(h)
	h = otelhttp.NewHandler(h, "orders", otelOpts...)
	h = httprate.LimitBy(1<<30, time.Minute, anchorTenantKey)(h)
	h = jwtmiddleware.New(newAuth0Validator(tb, f).ValidateToken).CheckJWT(h)
	return h
}
