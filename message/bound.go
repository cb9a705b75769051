package message

import (
	"context"
	"fmt"

	"github.com/tenancykit/tenancy/tenant"
)

// BoundQueue returns the trust mode of a queue bound to one tenant (a
// silo's queue, which only that tenant's producers can send to, by the
// queue's access policy): every message runs as the tenant tenantID of
// tier, established by the program (tenant.SourceAssigned). It proves
// what the queue's policy proves and nothing more; wrap each queue's
// handler with the tenant it is bound to.
//
// It panics when tenantID is not a valid tenant ID.
func BoundQueue(tenantID string, tier tenant.Tier) Middleware {
	t, err := tenant.New(tenantID, tier)
	if err != nil {
		panic(fmt.Sprintf("message: BoundQueue: %v", err))
	}
	t.Source = tenant.SourceAssigned
	return trust(nil, func(context.Context, *Message) (*tenant.Tenant, error) { return &t, nil })
}
