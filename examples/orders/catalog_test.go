package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/tenant"
)

// fakeCatalog stands in for examples/catalog: GET /products/{item} answers
// the prices it holds, 404 for other items, 500 for "broken". It records
// the headers of every request.
type fakeCatalog struct {
	*httptest.Server
	prices map[string]int64

	mu       sync.Mutex
	requests []http.Header
	paths    []string
}

func startCatalog(t *testing.T, prices map[string]int64) *fakeCatalog {
	t.Helper()
	c := &fakeCatalog{prices: prices}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{item}", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.requests = append(c.requests, r.Header.Clone())
		c.paths = append(c.paths, r.URL.EscapedPath())
		c.mu.Unlock()
		item := r.PathValue("item")
		if item == "broken" {
			tenant.WriteProblem(w, tenant.Problem{Status: http.StatusInternalServerError})
			return
		}
		price, ok := c.prices[item]
		if !ok {
			tenant.WriteProblem(w, tenant.Problem{Status: http.StatusNotFound, Detail: "No product with this name."})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"item": item, "unit_price_cents": price})
	})
	c.Server = httptest.NewServer(mux)
	t.Cleanup(c.Close)
	return c
}

// seen returns the headers and paths of the requests so far.
func (c *fakeCatalog) seen() ([]http.Header, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]http.Header(nil), c.requests...), append([]string(nil), c.paths...)
}

// TestCatalogPricesOrders sets CATALOG_URL: each new order is priced by
// the catalog, asked with the caller's token, the request's trace and the
// tenant in the baggage, and keeps its price in either store.
func TestCatalogPricesOrders(t *testing.T) {
	forEachStore(t, func(t *testing.T, env map[string]string) {
		cat := startCatalog(t, map[string]int64{"anvil": 1999, "bird seed": 250})
		env = mapWith(env, "CATALOG_URL", cat.URL+"/")
		iss := startIssuer(t)
		svc := startForIssuer(t, iss, env)
		alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
		eve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))

		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		r := svc.Do(t, "POST", "/orders", alice, `{"item":"anvil","quantity":3}`,
			http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
		if r.Status != http.StatusCreated {
			t.Fatalf("POST /orders: status %d, body %s", r.Status, r.Body)
		}
		o := decodeOrder(t, r.Body)
		if o.UnitPriceCents == nil || *o.UnitPriceCents != 1999 {
			t.Fatalf("order %s: want unit_price_cents 1999", r.Body)
		}
		seed := svc.create(t, eve, "bird seed", 1)
		if seed.UnitPriceCents == nil || *seed.UnitPriceCents != 250 {
			t.Errorf("globex's order: price %v, want 250", seed.UnitPriceCents)
		}

		// The price is stored with the order.
		got := svc.do(t, "GET", "/orders/"+o.ID, alice, "")
		if p := decodeOrder(t, got.Body); p.UnitPriceCents == nil || *p.UnitPriceCents != 1999 {
			t.Errorf("GET /orders/%s: %s, want unit_price_cents 1999", o.ID, got.Body)
		}

		headers, paths := cat.seen()
		if len(headers) != 2 {
			t.Fatalf("the catalog got %d requests, want 2", len(headers))
		}
		for i, c := range []struct {
			token, tenant, path string
		}{
			{alice, "acme", "/products/anvil"},
			{eve, "globex", "/products/bird%20seed"},
		} {
			h := headers[i]
			if got := h.Get("Authorization"); got != "Bearer "+c.token {
				t.Errorf("catalog request %d: Authorization %.20q..., want the caller's bearer token", i+1, got)
			}
			if got := h.Get("Baggage"); got != tenant.BaggageKey+"="+c.tenant {
				t.Errorf("catalog request %d: baggage %q, want %s=%s", i+1, got, tenant.BaggageKey, c.tenant)
			}
			if tp := h.Get("Traceparent"); !traceparent.MatchString(tp) {
				t.Errorf("catalog request %d: traceparent %q", i+1, tp)
			}
			if paths[i] != c.path {
				t.Errorf("catalog request %d: path %q, want %q", i+1, paths[i], c.path)
			}
		}
		// The first continues the trace the client started.
		if tp := headers[0].Get("Traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-") {
			t.Errorf("traceparent %q does not continue trace %s", tp, traceID)
		}
	})
}

// TestCatalogFailures: an item the catalog does not know is the client's
// mistake (400), anything else the catalog's (502); nothing is stored.
func TestCatalogFailures(t *testing.T) {
	cat := startCatalog(t, map[string]int64{"anvil": 1999})
	// The catalog that is down hangs up without an answer. It keeps its port
	// for the whole test: a closed server's port can be taken by the next
	// server another test starts, which would answer 404.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(down.Close)
	iss := startIssuer(t)
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	for _, c := range []struct {
		name, catalog, item string
		status              int
		detail              string
	}{
		{"unknown item", cat.URL, "hammock", http.StatusBadRequest, "Unknown item: the catalog has no product of this name."},
		{"dot dot", cat.URL, "..", http.StatusBadRequest, "Unknown item: the catalog has no product of this name."},
		{"catalog fails", cat.URL, "broken", http.StatusBadGateway, "The catalog could not price the item; retry later."},
		{"catalog down", down.URL, "anvil", http.StatusBadGateway, "The catalog could not price the item; retry later."},
	} {
		t.Run(c.name, func(t *testing.T) {
			svc := startForIssuer(t, iss, map[string]string{"CATALOG_URL": c.catalog})
			p := servicetest.WantProblem(t, svc.do(t, "POST", "/orders", alice, `{"item":"`+c.item+`","quantity":1}`), c.status)
			if p.Detail != c.detail {
				t.Errorf("detail %q, want %q", p.Detail, c.detail)
			}
			if got := svc.list(t, "/orders", alice); len(got) != 0 {
				t.Errorf("orders stored after a refusal: %v", ids(got))
			}
		})
	}
}
