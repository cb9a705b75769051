package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tenancykit/tenancy/tenant"
)

func tenantCtx(t *testing.T, id, user string) context.Context {
	t.Helper()
	tn, err := tenant.New(id, tenant.DefaultTiers.MustLookup("basic"))
	if err != nil {
		t.Fatal(err)
	}
	tn.Subject = user
	return tenant.NewContext(context.Background(), tn)
}

func TestMemoryStoreNeedsATenant(t *testing.T) {
	s := newMemoryStore()
	wantNoTenantRefused(t, s)
	if len(s.partitions) != 0 {
		t.Errorf("a partition was made without a tenant: %v", s.partitions)
	}
}

// wantNoTenantRefused checks that every method of s refuses a context
// without a tenant, or with the zero one, with ErrNoTenant.
func wantNoTenantRefused(t *testing.T, s Store) {
	t.Helper()
	for name, ctx := range map[string]context.Context{
		"no tenant":   context.Background(),
		"zero tenant": tenant.NewContext(context.Background(), tenant.Tenant{}),
	} {
		if _, err := s.Create(ctx, NewOrder{Item: "anvil", Quantity: 1}); !errors.Is(err, ErrNoTenant) {
			t.Errorf("%s: Create: %v, want ErrNoTenant", name, err)
		}
		if _, err := s.Get(ctx, "x"); !errors.Is(err, ErrNoTenant) {
			t.Errorf("%s: Get: %v, want ErrNoTenant", name, err)
		}
		if _, err := s.List(ctx); !errors.Is(err, ErrNoTenant) {
			t.Errorf("%s: List: %v, want ErrNoTenant", name, err)
		}
		if _, err := s.ListByUser(ctx, "alice"); !errors.Is(err, ErrNoTenant) {
			t.Errorf("%s: ListByUser: %v, want ErrNoTenant", name, err)
		}
	}
}

// TestMemoryStoreConcurrent creates orders for many tenants at once (run
// with -race) and checks each ends up with exactly its own.
func TestMemoryStoreConcurrent(t *testing.T) {
	s := newMemoryStore()
	const tenants, perTenant = 8, 50
	var wg sync.WaitGroup
	for i := range tenants {
		ctx := tenantCtx(t, fmt.Sprintf("tenant-%d", i), "user")
		for range perTenant {
			wg.Go(func() {
				o, err := s.Create(ctx, NewOrder{Item: "anvil", Quantity: 1})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Get(ctx, o.ID); err != nil {
					t.Errorf("Get of a just-created order: %v", err)
				}
				if _, err := s.List(ctx); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()

	seen := map[string]bool{}
	for i := range tenants {
		id := fmt.Sprintf("tenant-%d", i)
		list, err := s.List(tenantCtx(t, id, "user"))
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != perTenant {
			t.Errorf("%s has %d orders, want %d", id, len(list), perTenant)
		}
		for _, o := range list {
			if o.TenantID != id {
				t.Errorf("%s lists an order of %s", id, o.TenantID)
			}
			if seen[o.ID] || !orderID.MatchString(o.ID) {
				t.Errorf("order ID %q is repeated or not 16 hex characters", o.ID)
			}
			seen[o.ID] = true
		}
	}
}
