package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/tenancykit/tenancy/tenant"
)

// Limits of a call to the catalog.
const (
	catalogTimeout  = 5 * time.Second
	maxCatalogBytes = 64 << 10
)

// errUnknownItem means the catalog has no product of the item's name.
var errUnknownItem = errors.New("orders: the catalog has no such item")

// catalog prices items by asking the catalog service, GET
// {CATALOG_URL}/products/{item}, on behalf of the caller: tenant.Transport
// forwards the caller's bearer token, so the catalog verifies it and acts
// for the same tenant and user, and it propagates the trace context and
// the tenant.id baggage. It is safe for concurrent use.
type catalog struct {
	base      string // without a trailing slash
	client    *http.Client
	transport *http.Transport // to close its connections at shutdown
}

func newCatalog(base string) *catalog {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &catalog{
		base:      base,
		transport: tr,
		client: &http.Client{
			Transport: &tenant.Transport{Base: tr},
			// A redirect is an answer the service does not expect; it
			// is never followed with the caller's token.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// product is the catalog's answer.
type product struct {
	Item           string `json:"item"`
	UnitPriceCents *int64 `json:"unit_price_cents"`
	// TenantID, when the catalog says it, is the tenant it priced for.
	TenantID string `json:"tenant_id"`
}

// price returns the unit price of item for the tenant in ctx, in cents;
// errUnknownItem when the catalog has no such product, another error when
// the catalog could not be asked or gave an answer that cannot be used.
// Errors hold no token, but may hold the item's URL: log them, never send
// them.
func (c *catalog) price(ctx context.Context, item string) (int64, error) {
	if item == "." || item == ".." { // would name another path, not a product
		return 0, errUnknownItem
	}
	ctx, cancel := context.WithTimeout(ctx, catalogTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/products/"+url.PathEscape(item), nil)
	if err != nil {
		return 0, fmt.Errorf("catalog: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("catalog: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCatalogBytes+1))
	if err != nil {
		return 0, fmt.Errorf("catalog: read the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, errUnknownItem
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("catalog: status %d", resp.StatusCode)
	case len(body) > maxCatalogBytes:
		return 0, errors.New("catalog: the answer is larger than 64 KiB")
	}
	var p product
	if err := json.Unmarshal(body, &p); err != nil {
		return 0, fmt.Errorf("catalog: the answer is not a product: %w", err)
	}
	switch t, _ := tenant.FromContext(ctx); {
	case p.Item != item:
		return 0, errors.New("catalog: the answer is about another item")
	case p.UnitPriceCents == nil || *p.UnitPriceCents < 0:
		return 0, errors.New("catalog: the answer has no valid unit_price_cents")
	case p.TenantID != "" && p.TenantID != t.ID:
		return 0, errors.New("catalog: the answer is for another tenant")
	}
	return *p.UnitPriceCents, nil
}

// close closes the idle connections to the catalog.
func (c *catalog) close() { c.transport.CloseIdleConnections() }
