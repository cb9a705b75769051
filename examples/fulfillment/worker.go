package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

// The event the worker consumes, and what it meters.
const (
	// eventOrderCreated is the type of orders' event for an order placed.
	eventOrderCreated = "order.created"
	// meterOrdersFulfilled counts the orders a tenant had fulfilled.
	meterOrdersFulfilled = "orders.fulfilled"
)

// orderEvent is the body of an order.created message, as orders writes
// it. Only the fields the worker uses are read.
type orderEvent struct {
	Type  string `json:"type"`
	Order struct {
		ID       string `json:"id"`
		TenantID string `json:"tenant_id"`
		UserID   string `json:"user_id"`
		Item     string `json:"item"`
		Quantity int    `json:"quantity"`
	} `json:"order"`
}

// fulfiller fulfils orders: it marks each order fulfilled in its tenant's
// partition, once. It never reads a tenant from the message: the stack's
// trust mode put in the context the tenant the stamp proves, and the store
// is partitioned by it, as orders' store is.
type fulfiller struct {
	// log is the worker's logger, the one slog.SetDefault installed.
	log *slog.Logger

	mu        sync.Mutex
	fulfilled map[string]map[string]bool // tenant ID → order ID → fulfilled
}

func newFulfiller(log *slog.Logger) *fulfiller {
	return &fulfiller{log: log, fulfilled: make(map[string]map[string]bool)}
}

// HandleMessage fulfils the order of an order.created event. An event it
// cannot read, or one about an order of another tenant than the stamp's,
// is rejected (dead-lettered with the reason, never retried); an order
// fulfilled before (the event delivered again after a crash before its
// acknowledgement) is acknowledged without being fulfilled twice.
func (f *fulfiller) HandleMessage(ctx context.Context, m *message.Message) error {
	t, ok := tenant.FromContext(ctx)
	if !ok {
		// The stack's trust mode always sets one; without it no order is
		// anyone's to fulfil.
		return message.Reject("tenant_missing")
	}
	var ev orderEvent
	dec := json.NewDecoder(bytes.NewReader(m.Body))
	if err := dec.Decode(&ev); err != nil || ev.Type != eventOrderCreated || ev.Order.ID == "" {
		f.log.WarnContext(ctx, "event refused: not an order.created event")
		return message.Reject("invalid_event")
	}
	if ev.Order.TenantID != t.ID {
		// The stamp vouches for the tenant, the body only claims one.
		f.log.WarnContext(ctx, "event refused: the order is of another tenant than the stamp's", "order_id", ev.Order.ID)
		return message.Reject("tenant_mismatch")
	}
	f.mu.Lock()
	orders := f.fulfilled[t.ID]
	if orders == nil {
		orders = make(map[string]bool)
		f.fulfilled[t.ID] = orders
	}
	again := orders[ev.Order.ID]
	orders[ev.Order.ID] = true
	f.mu.Unlock()
	if again {
		f.log.InfoContext(ctx, "order already fulfilled", "order_id", ev.Order.ID)
		return nil
	}
	meter.Add(ctx, meterOrdersFulfilled, 1)
	// tenant_id, tenant_tier, user_id, the message ID as request_id and
	// the producer's trace come from the context.
	f.log.InfoContext(ctx, "order fulfilled", "order_id", ev.Order.ID, "item", ev.Order.Item, "quantity", ev.Order.Quantity)
	return nil
}
