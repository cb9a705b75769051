package logging_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
)

// dropKeys returns a ReplaceAttr that leaves out the top-level keys, so
// that the examples' output does not change from run to run.
func dropKeys(keys ...string) func([]string, slog.Attr) slog.Attr {
	return func(groups []string, a slog.Attr) slog.Attr {
		for _, k := range keys {
			if a.Key == k && len(groups) == 0 {
				return slog.Attr{}
			}
		}
		return a
	}
}

func ExampleNewHandler() {
	json := logging.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropKeys(slog.TimeKey)})
	logger := slog.New(logging.NewHandler(json))

	// authz.Middleware and logging.AccessLog put these in a request's
	// context; handlers only pass the context on.
	acme, _ := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
	acme.Subject = "user-7"
	ctx := tenant.NewContext(context.Background(), acme)
	ctx = logging.NewRequestIDContext(ctx, "req-1")

	logger.InfoContext(ctx, "order created", "order", 42, "password", "hunter2")
	logger.WithGroup("order").InfoContext(ctx, "shipped", "carrier", "dhl")
	// Output:
	// {"level":"INFO","msg":"order created","order":42,"password":"[REDACTED]","tenant_id":"acme","tenant_tier":"premium","user_id":"user-7","request_id":"req-1"}
	// {"level":"INFO","msg":"shipped","tenant_id":"acme","tenant_tier":"premium","user_id":"user-7","request_id":"req-1","order":{"carrier":"dhl"}}
}

func ExampleNewJSONHandler() {
	// In a service: slog.New(logging.NewHandler(logging.NewJSONHandler(os.Stdout, nil))).
	// Here without the time, so that the output does not change from run
	// to run.
	json := logging.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropKeys(slog.TimeKey)})
	logger := slog.New(json)

	logger.Info("order created", "order", 42, "note", `<b>as slog writes it</b> & "escaped"`,
		slog.Group("total", "amount", 12.5, "currency", "EUR"))
	// Output:
	// {"level":"INFO","msg":"order created","order":42,"note":"<b>as slog writes it</b> & \"escaped\"","total":{"amount":12.5,"currency":"EUR"}}
}

func ExampleLevels() {
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropKeys(slog.TimeKey)})
	levels := logging.NewLevels(slog.LevelInfo)
	logger := slog.New(logging.NewHandler(text, logging.WithLevels(levels)))

	basic := tenant.DefaultTiers.MustLookup("basic")
	acme, _ := tenant.New("acme", basic)
	globex, _ := tenant.New("globex", basic)
	acmeCtx := tenant.NewContext(context.Background(), acme)
	globexCtx := tenant.NewContext(context.Background(), globex)

	levels.Set("acme", slog.LevelDebug) // say, from an admin endpoint
	logger.DebugContext(acmeCtx, "cache miss", "key", "orders/42")
	logger.DebugContext(globexCtx, "cache miss", "key", "orders/7") // globex stays at info

	levels.Delete("acme")
	logger.DebugContext(acmeCtx, "cache miss", "key", "orders/43")
	logger.InfoContext(acmeCtx, "order created")
	// Output:
	// level=DEBUG msg="cache miss" key=orders/42 tenant_id=acme tenant_tier=basic
	// level=INFO msg="order created" tenant_id=acme tenant_tier=basic
}

func ExampleAccessLog() {
	json := logging.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: dropKeys(slog.TimeKey, logging.KeyDurationMS),
	})
	logger := slog.New(logging.NewHandler(json))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "loading order", "id", r.PathValue("id"))
		io.WriteString(w, "{}")
	})
	// Outermost, so that it sees every refusal of the middleware inside.
	handler := logging.AccessLog(logger,
		logging.WithoutTraceContext())(mux) // random trace IDs would change the output

	req := httptest.NewRequest("GET", "/orders/42", nil) // from 192.0.2.1
	req.Header.Set("X-Request-ID", "req-1")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println("X-Request-ID:", rec.Header().Get("X-Request-ID"))
	// Output:
	// {"level":"INFO","msg":"loading order","id":"42","request_id":"req-1"}
	// {"level":"INFO","msg":"request","method":"GET","route":"GET /orders/{id}","status":200,"bytes":2,"remote_ip":"192.0.2.1","request_id":"req-1"}
	// X-Request-ID: req-1
}

func ExampleAudit() {
	// Audit records go to a stream of their own: here stdout, in
	// production another log group.
	json := logging.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropKeys(slog.TimeKey)})
	prev := logging.DefaultAuditor()
	logging.SetDefaultAuditor(logging.NewAuditor(json))
	defer logging.SetDefaultAuditor(prev)

	acme, _ := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
	acme.Subject = "user-7"
	ctx := logging.NewRequestIDContext(tenant.NewContext(context.Background(), acme), "req-1")

	logging.Audit(ctx, "orders.delete", "orders/42", logging.OutcomeSuccess, slog.String("reason", "customer request"))
	// Output:
	// {"level":"INFO","msg":"audit","log_type":"audit","action":"orders.delete","resource":"orders/42","outcome":"success","tenant_id":"acme","tenant_tier":"premium","user_id":"user-7","request_id":"req-1","reason":"customer request"}
}
