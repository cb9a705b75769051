package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/tenancykit/tenancy/tenant"
)

// defaultPricesJSON is the price list: base unit prices in cents, and the
// discount each tier gets off them. Tiers it does not name pay the base
// price.
//
//go:embed prices.json
var defaultPricesJSON []byte

// tiers are the plans the catalog knows; authz accepts the same ones in the
// tier claim by default.
var tiers = tenant.DefaultTiers

// priceList quotes unit prices per tier. It is read-only once built, so
// safe for concurrent use.
type priceList struct {
	base     map[string]int64      // cents, by item
	discount map[tenant.Tier]int64 // percent off, by tier
}

// parsePrices decodes a price list in the format of prices.json and checks
// it: positive prices, item names without control characters, discounts
// from 0 to 100 percent for tiers that exist.
func parsePrices(data []byte) (*priceList, error) {
	var raw struct {
		Discount map[string]int64 `json:"discount_percent"`
		Prices   map[string]int64 `json:"unit_price_cents"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("price list: %w", err)
	}
	if len(raw.Prices) == 0 {
		return nil, errors.New("price list: no items in unit_price_cents")
	}
	p := &priceList{base: raw.Prices, discount: make(map[tenant.Tier]int64, len(raw.Discount))}
	for _, item := range slices.Sorted(maps.Keys(raw.Prices)) {
		if strings.TrimSpace(item) != item || item == "" || strings.ContainsFunc(item, unicode.IsControl) {
			return nil, fmt.Errorf("price list: item %q: empty, padded or with control characters", item)
		}
		// A price times 100 must not overflow int64 when discounted.
		if c := raw.Prices[item]; c < 1 || c > 1e15 {
			return nil, fmt.Errorf("price list: item %q: price %d cents is out of range (1 to 1e15)", item, c)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(raw.Discount)) {
		t, err := tiers.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("price list: discount_percent: %w", err)
		}
		if _, dup := p.discount[t]; dup {
			return nil, fmt.Errorf("price list: discount_percent: tier %q is given twice", t.String())
		}
		if pct := raw.Discount[name]; pct < 0 || pct > 100 {
			return nil, fmt.Errorf("price list: discount_percent %q: %d is not from 0 to 100", name, pct)
		}
		p.discount[t] = raw.Discount[name]
	}
	return p, nil
}

// quote returns the unit price of item for a tenant on tier, in cents,
// rounded half up, and false when the catalog has no such item.
func (p *priceList) quote(item string, tier tenant.Tier) (int64, bool) {
	base, ok := p.base[item]
	if !ok {
		return 0, false
	}
	pct := p.discount[tier] // zero for tiers without a discount
	return (base*(100-pct) + 50) / 100, true
}
