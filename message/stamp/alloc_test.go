//go:build !race

package stamp_test

import (
	"context"
	"testing"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
)

// TestRedeliveryAllocs: a redelivered message whose stamp is in the
// verified-stamp cache allocates its state and its tenant, no more:
// checking the body digest, the replay check (a key of the source and the
// jti apart, never joined) and accepting the message allocate nothing.
func TestRedeliveryAllocs(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	m := &message.Message{ID: "1", Source: "orders", Body: []byte(`{"order":42}`)}
	m.Attributes = mustStamp(t, s, verified("acme", "basic", "user-1"), `{"order":42}`)
	h := stamp.Trusted(v)(message.HandlerFunc(func(context.Context, *message.Message) error { return nil }))
	n := testing.AllocsPerRun(100, func() {
		if err := h.HandleMessage(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Errorf("a redelivered stamp allocates %v times, want at most 2", n)
	}
}
