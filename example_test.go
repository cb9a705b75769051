package tenancy_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// The whole stack around a service's router, as README.md shows it. A
// development issuer stands in for the identity provider; in production
// the verifier is authz.NewVerifier(ctx, issuerURL,
// authz.WithAudience(clientID)) and the meter's sink is meter.NewEMF or a
// Kinesis stream.
func Example() {
	ctx := context.Background()
	issuer, err := authztest.NewIssuer()
	if err != nil {
		panic(err)
	}
	defer issuer.Close()

	verifier, err := issuer.NewVerifier(ctx) // Cognito claims by default
	if err != nil {
		panic(err)
	}
	defer verifier.Close()
	limiter, err := throttle.New(tenant.DefaultTiers, map[string]throttle.Limits{ // a budget per tenant, sized by tier
		"basic":    {Rate: 5, Burst: 10},
		"standard": {Rate: 20, Burst: 40},
		"premium":  {Rate: 100, Burst: 200},
		"platinum": {Rate: 500, Burst: 1000},
	})
	if err != nil {
		panic(err)
	}
	usage, err := meter.New("orders", meter.NewJSONLines(&strings.Builder{}),
		meter.WithMeters(meter.HTTPMeters()...), meter.WithMeters(meter.Meter{Name: "orders.created"}))
	if err != nil {
		panic(err)
	}
	defer usage.Shutdown(ctx)
	logger := slog.New(logging.NewHandler(logging.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: dropVarying, // time, duration, request and trace IDs change with every run
	})))

	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		t, _ := tenant.FromContext(r.Context())          // verified: never from the body
		logger.InfoContext(r.Context(), "order created") // + tenant_id, user_id, request_id, trace_id
		meter.Add(r.Context(), "orders.created", 1)      // billed to t, aggregated per minute
		fmt.Fprintf(w, "created for %s (%s)\n", t.ID, t.Tier)
	})
	stack, err := tenancy.New(
		tenancy.WithAccessLog(logger),
		tenancy.WithMeter(usage),
		tenancy.WithAuthz(verifier),
		tenancy.WithThrottle(limiter),
	)
	if err != nil {
		panic(err)
	}
	handler := stack.Wrap(mux)

	for _, token := range []string{issuer.MustMint("acme", "premium"), ""} {
		req := httptest.NewRequest("POST", "/orders", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		fmt.Println(w.Code, w.Header().Get("Content-Type"), strings.TrimSpace(w.Body.String()[:min(w.Body.Len(), 27)]))
	}
	// Output:
	// {"level":"INFO","msg":"order created","tenant_id":"acme","tenant_tier":"premium","user_id":"user-1"}
	// {"level":"INFO","msg":"request","method":"POST","route":"POST /orders","status":200,"bytes":27,"remote_ip":"192.0.2.1","tenant_id":"acme","tenant_tier":"premium","user_id":"user-1"}
	// 200 text/plain; charset=utf-8 created for acme (premium)
	// {"level":"WARN","msg":"request","method":"POST","route":"POST /orders","status":401,"bytes":164,"remote_ip":"192.0.2.1","rejected_by":"authz","reject_reason":"no_token"}
	// {"level":"INFO","msg":"audit","log_type":"audit","action":"authorize","resource":"POST /orders","outcome":"denied","method":"POST","reject_reason":"no_token","status":401,"remote_ip":"192.0.2.1"}
	// 401 application/problem+json {"type":"https://github.com
}

// dropVarying removes the attributes that differ from run to run.
func dropVarying(groups []string, a slog.Attr) slog.Attr {
	switch a.Key {
	case slog.TimeKey, logging.KeyDurationMS, logging.KeyRequestID, logging.KeyTraceID, logging.KeySpanID:
		return slog.Attr{}
	}
	return a
}
