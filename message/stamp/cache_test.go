package stamp_test

import (
	"context"
	"testing"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
)

// TestRedeliveredStampIsCheaper: a stamp seen before is not checked
// again (authz's verified-token cache): its delivery allocates far less
// than the first check of the same stamp without the cache.
func TestRedeliveredStampIsCheaper(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	cached, _ := newVerifier(t, s, clk)
	uncached, _ := newVerifier(t, s, clk, stamp.WithAuthzOptions(authz.WithCacheSize(-1)))
	m := &message.Message{ID: "1", Source: "orders", Body: []byte("a")}
	m.Attributes = mustStamp(t, s, verified("acme", "basic", "user-1"), "a")
	h := message.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	deliver := func(v *stamp.Verifier) float64 {
		hv := stamp.Trusted(v)(h)
		return testing.AllocsPerRun(50, func() {
			if err := hv.HandleMessage(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		})
	}
	hit, miss := deliver(cached), deliver(uncached)
	if hit*2 > miss {
		t.Errorf("a redelivered stamp costs %.0f allocations with the cache, %.0f without: want the cache to halve them at least", hit, miss)
	}
}
