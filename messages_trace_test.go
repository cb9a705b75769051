package tenancy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/throttle"
)

// TestMessageTraceContinues: one trace runs from the HTTP request that
// published a message to the worker that consumed it: the access line,
// the message line and the handler's lines share the trace ID the
// request came with, and the message's lines have a span of their own.
func TestMessageTraceContinues(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 10, Burst: 10})
	iss := authztest.Start(t)
	api, err := tenancy.New(tenancy.WithAccessLog(c.logger), tenancy.WithAuthz(iss.Verifier(t)))
	if err != nil {
		t.Fatal(err)
	}
	publish := api.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		attrs, err := c.signer.Stamp(r.Context(), body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		c.queue.Publish(body, attrs)
		w.WriteHeader(http.StatusAccepted)
	}))
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"order":1}`))
	req.Header.Set("Authorization", "Bearer "+iss.MustMint("acme", "premium"))
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	w := httptest.NewRecorder()
	publish.ServeHTTP(w, req)
	if w.Code != http.StatusAccepted {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}

	c.queue.Drain(context.Background(), c.wrap(t, message.HandlerFunc(c.fulfil)))
	access, msg, handled := c.lines(t, "request"), c.lines(t, "message"), c.lines(t, "fulfilled")
	if len(access) != 1 || len(msg) != 1 || len(handled) != 1 {
		t.Fatalf("%d access, %d message, %d handler lines; want one of each", len(access), len(msg), len(handled))
	}
	for _, l := range []map[string]any{access[0], msg[0], handled[0]} {
		if l["trace_id"] != traceID || l["tenant_id"] != "acme" {
			t.Errorf("line %v: want trace %s and tenant acme", l, traceID)
		}
	}
	if msg[0]["span_id"] != handled[0]["span_id"] || msg[0]["span_id"] == access[0]["span_id"] || msg[0]["span_id"] == nil {
		t.Errorf("span IDs: access %v, message %v, handler %v; want the message's lines to share one of their own",
			access[0]["span_id"], msg[0]["span_id"], handled[0]["span_id"])
	}
}
