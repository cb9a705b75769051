package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/awscreds"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// Limits of a request body.
const (
	maxBodyBytes = 64 << 10
	maxQuantity  = 10_000
	maxItemRunes = 200
)

// api serves the orders endpoints. Its handlers never see a tenant ID: the
// store reads the tenant from the request context, where authz put it.
type api struct {
	store Store
	// catalog prices new orders; nil when CATALOG_URL is unset.
	catalog *catalog
	// events publishes the order.created event of each order placed.
	events *orderEvents
	// log is the service's logger, the one slog.SetDefault installed:
	// a.log.InfoContext(ctx, ...) is slog.InfoContext(ctx, ...), but stays
	// this service's when a test runs several in one process.
	log *slog.Logger
}

// stack is what the middleware chain is built from.
type stack struct {
	store    Store
	catalog  *catalog // nil: orders are not priced
	verifier *authz.Verifier
	limiter  *throttle.Limiter
	recorder *meter.Recorder
	creds    *awscreds.Provider // nil: no tenant-scoped AWS credentials
	events   *orderEvents
	log      *slog.Logger
	auditor  *logging.Auditor
}

// newHandler builds the service: GET /healthz without a token, a limit,
// metering or an access line (see kit.WithHealthz), and the orders routes
// inside the tenancy stack, outermost first:
//
//	access log   request ID, trace context, one access line per request
//	meter        usage per tenant and route, denied requests included
//	authz        the bearer token, verified, gives the tenant (401)
//	throttle     the tenant's budget, by tier (429)
//	awscreds     the tenant's AWS credentials, with AWS_TENANT_ROLE_ARN (503 when STS fails)
//	the orders routes
func newHandler(s stack) (http.Handler, error) {
	a := &api{store: s.store, catalog: s.catalog, events: s.events, log: s.log}
	orders := http.NewServeMux()
	orders.HandleFunc("POST /orders", a.createOrder)
	orders.HandleFunc("GET /orders", a.listOrders)
	orders.HandleFunc("GET /orders/{id}", a.getOrder)
	orders.HandleFunc("GET /users/{user}/orders", a.listUserOrders)

	opts := []tenancy.Option{
		tenancy.WithAccessLog(s.log, logging.WithAuditor(s.auditor)),
		tenancy.WithMeter(s.recorder),
		tenancy.WithAuthz(s.verifier),
		tenancy.WithThrottle(s.limiter),
	}
	if s.creds != nil {
		opts = append(opts, tenancy.WithCredentials(awscreds.Middleware(s.creds, awscreds.WithOnError(func(r *http.Request, err error) {
			s.log.ErrorContext(r.Context(), "tenant AWS credentials unavailable", "error", err)
		}))))
	}
	stack, err := tenancy.New(opts...)
	if err != nil {
		return nil, err
	}
	// The stamp JWK Set is public, as an issuer's is: no token, no limit.
	root := http.NewServeMux()
	root.HandleFunc("GET "+stampJWKSPath, s.events.serveJWKS)
	root.Handle("/", kit.WithHealthz(stack.Wrap(orders)))
	return root, nil
}

func (a *api) createOrder(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	in, problem := decodeNewOrder(w, r)
	if problem != "" {
		tenant.WriteProblem(w, tenant.Problem{Status: http.StatusBadRequest, Detail: problem})
		return
	}
	if a.catalog != nil {
		price, err := a.catalog.price(ctx, in.Item)
		switch {
		case errors.Is(err, errUnknownItem):
			a.log.InfoContext(ctx, "order refused: unknown item")
			tenant.WriteProblem(w, tenant.Problem{Status: http.StatusBadRequest, Detail: "Unknown item: the catalog has no product of this name."})
			return
		case err != nil:
			a.log.ErrorContext(ctx, "catalog failed", "error", err)
			tenant.WriteProblem(w, tenant.Problem{Status: http.StatusBadGateway, Detail: "The catalog could not price the item; retry later."})
			return
		}
		in.UnitPriceCents = &price
	}
	o, err := a.store.Create(ctx, in)
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	meter.Add(ctx, meterOrdersCreated, 1)
	// tenant_id, tenant_tier, user_id, request_id and the trace come from
	// the context.
	a.log.InfoContext(ctx, "order created", "order_id", o.ID, "quantity", o.Quantity)
	// The order is stored: its event is published now, or kept in the
	// outbox and published once the transport is back. Either way the
	// client has its order and must not place it again.
	if err := a.events.publish(ctx, o); err != nil {
		// Only a tenant that cannot be stamped gets here, which authz
		// never lets through.
		a.log.ErrorContext(ctx, "order event not made", "order_id", o.ID, "error", err)
		tenant.WriteProblem(w, tenant.Problem{Status: http.StatusInternalServerError, Detail: "The order was stored but its event could not be made."})
		return
	}
	w.Header().Set("Location", "/orders/"+o.ID)
	kit.WriteJSON(w, http.StatusCreated, o)
}

func (a *api) listOrders(w http.ResponseWriter, r *http.Request) {
	list, err := a.store.List(r.Context())
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	a.log.DebugContext(r.Context(), "orders listed", "count", len(list))
	kit.WriteJSON(w, http.StatusOK, orderList{Orders: list})
}

func (a *api) getOrder(w http.ResponseWriter, r *http.Request) {
	o, err := a.store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	a.log.DebugContext(r.Context(), "order read", "order_id", o.ID)
	kit.WriteJSON(w, http.StatusOK, o)
}

// listUserOrders lists the orders of the user named in the path.
//
// It deliberately does not check that {user} is the caller: this is the
// classic bug that lets Eve read Alice's orders. Here it cannot cross
// tenants, because the store only ever reads the caller's tenant partition;
// within a tenant, add an authz.RequireRole or a subject check if users must
// not see each other's orders.
func (a *api) listUserOrders(w http.ResponseWriter, r *http.Request) {
	list, err := a.store.ListByUser(r.Context(), r.PathValue("user"))
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	a.log.DebugContext(r.Context(), "orders of a user listed", "count", len(list))
	kit.WriteJSON(w, http.StatusOK, orderList{Orders: list})
}

type orderList struct {
	Orders []Order `json:"orders"`
}

// storeFailed answers a store error: 404 for an order the tenant does not
// have, 500 with a fixed detail for anything else (logged, never sent).
func (a *api) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		tenant.WriteProblem(w, tenant.Problem{Status: http.StatusNotFound, Detail: "No order with this ID."})
		return
	}
	a.log.ErrorContext(r.Context(), "store failed", "error", err)
	tenant.WriteProblem(w, tenant.Problem{Status: http.StatusInternalServerError, Detail: "The order store failed."})
}

// decodeNewOrder reads and checks the body of POST /orders. It returns a
// fixed description of what is wrong, safe to send, or "".
//
// The body is first read as an object of raw fields, so that an unknown
// field (such as a tenant_id a client hoped would be believed) is refused by
// name comparison rather than by matching encoding/json's error text.
func decodeNewOrder(w http.ResponseWriter, r *http.Request) (NewOrder, string) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var fields map[string]json.RawMessage
	err := dec.Decode(&fields)
	if err == nil {
		// Anything after the object, even a second object, is refused.
		switch err = dec.Decode(new(json.RawMessage)); err {
		case io.EOF:
			err = nil
		case nil:
			return NewOrder{}, "The body must hold exactly one JSON object."
		}
	}
	if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
		return NewOrder{}, "The body is larger than 64 KiB."
	}
	if err != nil {
		return NewOrder{}, "The body is not a valid JSON object."
	}
	for name := range fields {
		if name != "item" && name != "quantity" {
			return NewOrder{}, "The body may only hold the fields item and quantity."
		}
	}
	var in NewOrder
	if json.Unmarshal(orNull(fields["item"]), &in.Item) != nil ||
		json.Unmarshal(orNull(fields["quantity"]), &in.Quantity) != nil {
		return NewOrder{}, "item must be a string and quantity a whole number."
	}
	switch {
	case strings.TrimSpace(in.Item) == "":
		return NewOrder{}, "item is required."
	case utf8.RuneCountInString(in.Item) > maxItemRunes:
		return NewOrder{}, "item must be at most 200 characters."
	case strings.ContainsFunc(in.Item, unicode.IsControl):
		return NewOrder{}, "item must not contain control characters."
	case in.Quantity < 1 || in.Quantity > maxQuantity:
		return NewOrder{}, "quantity must be between 1 and 10000."
	}
	return in, ""
}

// orNull stands in for an absent field, which then decodes to its zero value.
func orNull(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	return raw
}
