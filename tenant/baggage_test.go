package tenant_test

import (
	"testing"

	"github.com/tenancykit/tenancy/internal/propagate"
	"github.com/tenancykit/tenancy/tenant"
)

// Requests (tenant.Transport) and messages (stamp.Signer) name the
// tenant in the baggage under the same key.
func TestBaggageKeyIsPropagates(t *testing.T) {
	if tenant.BaggageKey != propagate.BaggageKey {
		t.Fatalf("tenant.BaggageKey = %q, internal/propagate writes %q", tenant.BaggageKey, propagate.BaggageKey)
	}
}
