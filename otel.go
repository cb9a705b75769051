package tenancy

import (
	"strings"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// annotate tells an OpenTelemetry instrumentation outside the stack
// (otelhttp.NewHandler around Stack.Wrap) what the stack learnt, once the
// request is served:
//
//   - the route, as the Pattern of the request it holds, where a router
//     would have set it: otelhttp names its span "GET /orders/{id}" and
//     puts http.route on the span and on its request metrics;
//   - on its span, when it records: http.route, tenant.id, tenant.tier,
//     and a refusal's tenancy.rejected_by and tenancy.reject_reason;
//   - on otelhttp's Labeler, for its request metrics: tenant.tier (never
//     the tenant ID, one time series per tenant).
//
// Without a span in the context (no instrumentation outside, or one
// inside the stack, which makes its own span from the request's
// traceparent) it costs one context lookup.
func annotate(st *request.State) {
	given := st.Given()
	ctx := given.Context()
	span := trace.SpanFromContext(ctx)
	if !span.SpanContext().IsValid() {
		return
	}
	route := st.Route(given)
	if given.Pattern == "" {
		given.Pattern = route
	}
	var tier string
	t, _ := st.Tenant()
	tn, _ := t.(*tenant.Tenant)
	if tn != nil {
		tier = tn.Tier.String()
	}
	// A ServeMux pattern may start with a method and a host.
	if i := strings.IndexByte(route, '/'); i >= 0 {
		route = route[i:]
	} else {
		route = ""
	}
	if labeler, ok := otelhttp.LabelerFromContext(ctx); ok {
		// The route too: behind a router adapter, the request otelhttp
		// holds is not the one whose Pattern the stack set.
		if route != "" {
			labeler.Add(attribute.String("http.route", route))
		}
		if tier != "" {
			labeler.Add(tenant.TierKey.String(tier))
		}
	}
	if !span.IsRecording() {
		return
	}
	var buf [5]attribute.KeyValue
	attrs := buf[:0]
	if route != "" {
		attrs = append(attrs, attribute.String("http.route", route))
	}
	if tn != nil {
		attrs = append(attrs, tenant.IDKey.String(tn.ID))
		if tier != "" {
			attrs = append(attrs, tenant.TierKey.String(tier))
		}
	}
	if rej := st.Rejection(); rej.By != "" {
		attrs = append(attrs, tenant.RejectedByKey.String(rej.By), tenant.RejectReasonKey.String(rej.Reason))
	}
	span.SetAttributes(attrs...)
}
