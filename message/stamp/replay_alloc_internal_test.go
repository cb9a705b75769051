//go:build !race

package stamp

import (
	"testing"
	"time"
)

// TestReplayLookupAllocatesNothing: the replay check of a redelivery (the
// stamp is in the cache, on the same message) and a lookup allocate
// nothing; only a stamp seen for the first time allocates its entry's
// strings.
func TestReplayLookupAllocatesNothing(t *testing.T) {
	c := newReplayCache(64)
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(time.Hour)
	// Strings built at run time, as a transport and a JWT decoder make
	// them, not constants.
	source, jti, id := string([]byte("orders")), string([]byte("jti-1")), string([]byte("m-1"))
	c.see(source, jti, id, exp, now)
	if n := testing.AllocsPerRun(100, func() {
		if !c.see(source, jti, id, exp, now) {
			t.Fatal("a redelivery was taken for a replay")
		}
	}); n != 0 {
		t.Errorf("the replay check of a redelivery allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if got, ok := c.lookup(source, jti, now); !ok || got != id {
			t.Fatal("lookup misses a stamp seen")
		}
	}); n != 0 {
		t.Errorf("lookup allocates %v times, want 0", n)
	}
}
