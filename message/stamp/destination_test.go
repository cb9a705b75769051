package stamp_test

import (
	"context"
	"testing"

	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/stamp"
)

// TestStampForAnotherDestinationWithoutForDestination: a stamp the
// producer made for "billing" only, moved to the queue of a consumer
// whose Verifier has no ForDestination, is refused there: a JWT's
// audience (RFC 7519, 4.1.3) is refused by a recipient that does not
// identify itself with it.
func TestStampForAnotherDestinationWithoutForDestination(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	q := memqueue.New("fulfillment")
	q.Publish([]byte("a"), mustStamp(t, s, verified("acme", "basic", ""), "a", stamp.WithDestination("billing")))
	var got messagetest.Seen
	q.Drain(context.Background(), stamp.Trusted(v)(got.Handler()))
	if dead := q.DeadLetters(); got.Count() != 0 || len(dead) != 1 || dead[0].Reason != "stamp:destination" {
		t.Fatalf("ran %d, dead %v; want the stamp for billing refused stamp:destination", got.Count(), dead)
	}
}
