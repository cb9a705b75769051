package main

import (
	"context"
	"errors"
	"time"

	"github.com/tenancykit/tenancy/tenant"
)

// Order is one order of one tenant. TenantID and UserID come from the
// verified token of the request that placed it, never from its body.
type Order struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	UserID    string    `json:"user_id"`
	Item      string    `json:"item"`
	Quantity  int       `json:"quantity"`
	CreatedAt time.Time `json:"created_at"`
	// UnitPriceCents is the catalog's price of one item when the order
	// was placed; nil (and absent from JSON) when no catalog priced it.
	UnitPriceCents *int64 `json:"unit_price_cents,omitempty"`
}

// NewOrder is what a client may say about an order it places, and the
// price the service found for it.
type NewOrder struct {
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
	// UnitPriceCents is set by the service from the catalog, never from
	// the body of a request; nil when orders are not priced.
	UnitPriceCents *int64 `json:"-"`
}

// Errors of a [Store].
var (
	// ErrNoTenant means the context carries no tenant: a store refuses to
	// guess which partition to use.
	ErrNoTenant = errors.New("orders: no tenant in context")
	// ErrNotFound means the tenant in the context has no order with that
	// ID. Another tenant's order is not found either: a store cannot tell
	// one from the other.
	ErrNotFound = errors.New("orders: order not found")
)

// Store keeps orders partitioned by tenant. Every method acts for the tenant
// in ctx, read with tenant.FromContext, and fails with [ErrNoTenant] when
// there is none. No method takes a tenant ID, so a handler has no way to
// name another tenant's partition: isolation does not depend on handlers
// getting their checks right.
//
// Implementations are safe for concurrent use: [memoryStore] in process
// memory, and [dynamoStore] in a pooled DynamoDB table whose partition key
// is the tenant ID.
type Store interface {
	// Create stores a new order for the tenant and user (the token's
	// subject) in ctx and returns it with its ID and creation time.
	Create(ctx context.Context, o NewOrder) (Order, error)
	// Get returns the tenant's order with the given ID, or ErrNotFound.
	Get(ctx context.Context, id string) (Order, error)
	// List returns the tenant's orders, oldest first; an empty, non-nil
	// slice when there are none.
	List(ctx context.Context) ([]Order, error)
	// ListByUser returns the tenant's orders placed by userID, oldest
	// first. A user of another tenant with the same name is another user.
	ListByUser(ctx context.Context, userID string) ([]Order, error)
}

// newOrder is the order t places with in at now, without its ID: the
// tenant and user come from the verified tenant, never from the body.
func newOrder(t tenant.Tenant, in NewOrder, now time.Time) Order {
	o := Order{
		TenantID:  t.ID,
		UserID:    t.Subject,
		Item:      in.Item,
		Quantity:  in.Quantity,
		CreatedAt: now.UTC(),
	}
	if in.UnitPriceCents != nil {
		p := *in.UnitPriceCents // not shared with the caller
		o.UnitPriceCents = &p
	}
	return o
}
