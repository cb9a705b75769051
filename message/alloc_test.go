//go:build !race

package message_test

import (
	"context"
	"testing"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// TestBoundQueueAllocs: a queue bound to one tenant establishes the same
// tenant for every message, so a message through it allocates its state
// and nothing else.
func TestBoundQueueAllocs(t *testing.T) {
	var seen string
	h := message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("premium"))(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		seen = tn.ID
		return nil
	}))
	m := &message.Message{ID: "1", Source: "orders", Body: []byte("{}")}
	n := testing.AllocsPerRun(100, func() {
		if err := h.HandleMessage(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	})
	if seen != "acme" {
		t.Fatalf("the handler ran as %q, want acme", seen)
	}
	if n > 1 {
		t.Errorf("a message through BoundQueue allocates %v times, want 1 (its state)", n)
	}
}
