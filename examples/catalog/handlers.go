package main

import (
	"log/slog"
	"net/http"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
)

// api serves the catalog endpoints. Its handlers read the tenant from the
// request context, where authz put it from the verified token: a header,
// the baggage or the path can never choose the tenant.
type api struct {
	prices *priceList
	log    *slog.Logger
}

// product is the answer of GET /products/{item}.
type product struct {
	Item           string `json:"item"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	TenantID       string `json:"tenant_id"`
}

// newHandler answers /healthz without a token or an access log line (see
// kit.WithHealthz), and everything else through the tenancy stack: the
// access log, outermost, then authz with v. audit receives the audit
// events of refused tokens.
func newHandler(prices *priceList, v *authz.Verifier, log *slog.Logger, audit *logging.Auditor) (http.Handler, error) {
	a := &api{prices: prices, log: log}
	products := http.NewServeMux()
	products.HandleFunc("GET /products/{item}", a.getProduct)
	// Any other path still needs a token, so that an anonymous caller
	// cannot learn which routes exist.
	products.HandleFunc("/", notFound)

	stack, err := tenancy.New(
		tenancy.WithAccessLog(log, logging.WithAuditor(audit)),
		tenancy.WithAuthz(v),
	)
	if err != nil {
		return nil, err
	}
	return kit.WithHealthz(stack.Wrap(products)), nil
}

// getProduct quotes the unit price of {item} for the caller's tenant.
func (a *api) getProduct(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, ok := tenant.FromContext(ctx)
	if !ok { // unreachable behind authz.Middleware
		tenant.WriteProblem(w, tenant.Problem{Status: http.StatusInternalServerError})
		return
	}
	item := r.PathValue("item")
	price, ok := a.prices.quote(item, t.Tier)
	if !ok {
		// The item is not echoed: it is whatever the client sent.
		tenant.WriteProblem(w, tenant.Problem{Status: http.StatusNotFound, Detail: "No product with this name."})
		return
	}
	// tenant_id, tenant_tier, user_id, request_id and the trace come
	// from the context; the handler only says what it did.
	a.log.InfoContext(ctx, "price quoted", "item", item, "unit_price_cents", price)
	// Prices differ by tenant: kit.WriteJSON says no-store.
	kit.WriteJSON(w, http.StatusOK, product{Item: item, UnitPriceCents: price, TenantID: t.ID})
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	tenant.WriteProblem(w, tenant.Problem{Status: http.StatusNotFound, Detail: "No such resource."})
}
