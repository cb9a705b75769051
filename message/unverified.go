package message

import (
	"context"
	"fmt"

	"github.com/tenancykit/tenancy/internal/refusals"
	"github.com/tenancykit/tenancy/tenant"
)

// UnverifiedAttribute returns the trust mode of internal pools whose
// producers are all trusted: the tenant is the one the message attribute
// name names, verified by no one (tenant.SourceClaimed), with its tier
// from [WithTierAttribute] or the lowest. Anyone who can send to the
// queue can name any tenant. The parts that act with a tenant's
// authority refuse a claimed tenant, as they do over HTTP, unless told
// otherwise: the throttle (throttle.WithClaimedTenants) and credentials
// (awscreds.WithClaimedTenants).
//
// A message without the attribute is refused with the reason
// "tenant_missing", one whose value is no valid tenant ID with
// "tenant_invalid", an unknown tier with "tier_invalid", By
// "unverified_attribute", and counted. It takes [WithTiers],
// [WithTierAttribute] and [WithMeterProvider]; it panics when name is
// empty or an option does not apply.
func UnverifiedAttribute(name string, opts ...Option) Middleware {
	c, err := newConfig("UnverifiedAttribute", []string{"WithTiers", "WithTierAttribute", "WithMeterProvider"}, opts)
	if err != nil {
		panic(err.Error())
	}
	if name == "" {
		panic("message: UnverifiedAttribute needs the name of the attribute that names the tenant")
	}
	return trust(refusals.NewCounter(c.meterProvider), func(_ context.Context, m *Message) (*tenant.Tenant, error) {
		t, err := attributeTenant(byUnverified, m, name, &c)
		if err != nil {
			return nil, err
		}
		t.Source = tenant.SourceClaimed
		return &t, nil
	})
}

// attributeTenant is the tenant the attributes of m name: its ID under
// name, its tier under c.tierAttribute.
func attributeTenant(by string, m *Message, name string, c *config) (tenant.Tenant, error) {
	id := m.Attributes[name]
	if id == "" {
		return tenant.Tenant{}, reject(by, "tenant_missing", nil)
	}
	tier := c.tiers.Lowest()
	if c.tierAttribute != "" {
		if v, ok := m.Attributes[c.tierAttribute]; ok {
			var err error
			if tier, err = c.tiers.Parse(v); err != nil {
				rej := &RejectError{By: by, Reason: "tier_invalid", Err: err}
				if tenant.ValidateID(id) == nil {
					rej.Tenant = id
				}
				return tenant.Tenant{}, rej
			}
		}
	}
	t, err := tenant.New(id, tier)
	if err != nil {
		return tenant.Tenant{}, reject(by, "tenant_invalid", fmt.Errorf("message: attribute %q: %w", name, err))
	}
	return t, nil
}
