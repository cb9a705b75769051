// Command otelslog sends tenancy's tenant-tagged log lines to
// OpenTelemetry. The otelslog bridge is the next handler of
// logging.NewHandler with logging.WithOTelNames, so every OpenTelemetry log
// record carries tenant.id, tenant.tier, user.id (the names of the span
// and metric attributes) and request_id as attributes, and the bridge sets
// the record's trace and span IDs from the same context.
//
// It serves one request in process, behind a gateway that has already
// verified the caller and names the tenant in trusted headers, and prints
// the exported records with the stdoutlog exporter. A service would export
// over OTLP instead and keep everything else.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutlog"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

const scope = "github.com/tenancykit/tenancy/examples/otelslog"

func main() {
	exp, err := stdoutlog.New(stdoutlog.WithWriter(os.Stdout), stdoutlog.WithPrettyPrint())
	if err == nil {
		err = run(context.Background(), exp)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "otelslog:", err)
		os.Exit(1)
	}
}

// run logs one request through exp and flushes it.
func run(ctx context.Context, exp sdklog.Exporter) (err error) {
	logs := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
	defer func() { err = errors.Join(err, logs.Shutdown(ctx)) }() // flushes the batch

	bridge := otelslog.NewHandler(scope, otelslog.WithLoggerProvider(logs))
	logger := slog.New(logging.NewHandler(bridge, logging.WithOTelNames()))

	traces := sdktrace.NewTracerProvider()
	defer traces.Shutdown(ctx)

	handler, err := newHandler(logger, traces.Tracer(scope))
	if err != nil {
		return err
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/orders", nil) // from 192.0.2.1
	req.Header.Set("X-Tenant-ID", "acme")
	req.Header.Set("X-Tenant-Tier", "premium")
	resp := httptest.NewRecorder()
	handler.ServeHTTP(resp, req)
	if resp.Code != http.StatusCreated {
		return fmt.Errorf("POST /orders: status %d", resp.Code)
	}
	return nil
}

// newHandler returns the service: a span per request (otelhttp would start
// it in a real service), the access log, the tenant from the gateway's
// headers, and the orders route.
func newHandler(logger *slog.Logger, tracer trace.Tracer) (http.Handler, error) {
	fromGateway, err := tenant.TrustedHeader([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		tenant.WithTierHeader("X-Tenant-Tier", tenant.DefaultTiers))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		// Nothing about the tenant here: the context carries it.
		logger.InfoContext(r.Context(), "order created", "order", 42)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":42}`)
	})
	traced := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := tracer.Start(r.Context(), r.Method)
			defer span.End()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	stack, err := tenancy.New(tenancy.WithAccessLog(logger), tenancy.WithResolver(fromGateway))
	if err != nil {
		return nil, err
	}
	// Outside the access log, so that its line names the request's trace.
	return traced(stack.Wrap(mux)), nil
}
