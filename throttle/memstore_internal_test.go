package throttle

import (
	"testing"
	"time"
)

// TestMemoryStoreCollidedKeys: two keys whose 64-bit hashes are equal (a
// chance of about one in 2^44 among a million keys, forced here) keep
// buckets of their own, and are found, swept and evicted as any other.
func TestMemoryStoreCollidedKeys(t *testing.T) {
	s, err := NewMemoryStore(WithIdleTTL(time.Minute), WithMaxKeys(3))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	const h = 42 << 56 // shard 42
	sh := &s.shards[42]
	lim := Limits{Rate: 1, Burst: 2}
	take := func(key string, check uint64, at time.Time) Result {
		t.Helper()
		sh.mu.RLock()
		e := sh.find(h, check, key)
		if e != nil {
			e.pins.Add(1)
		}
		sh.mu.RUnlock()
		if e == nil {
			e = s.insert(sh, key, h, check, at.UnixNano())
		}
		defer e.pins.Add(-1)
		return e.take(lim, 1, at, &s.calendar)
	}
	for range 2 {
		if !take("a", 1, now).Allowed {
			t.Fatal("a's burst refused")
		}
	}
	if take("a", 1, now).Allowed {
		t.Fatal("a admitted past its burst")
	}
	// b has a's hash and a bucket of its own.
	if res := take("b", 2, now); !res.Allowed || res.Remaining != 1 {
		t.Fatalf("b, colliding with a: %+v; want its own full burst", res)
	}
	if len(sh.m) != 1 || len(sh.collided) != 1 || s.Len() != 2 {
		t.Fatalf("%d in the map, %d collided, Len %d; want 1, 1, 2", len(sh.m), len(sh.collided), s.Len())
	}
	if res := take("b", 2, now); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("b again: %+v", res)
	}
	// A lookup whose check matches neither finds nothing.
	if e := sh.find(h, 3, "c"); e != nil {
		t.Fatal("c found in a's or b's place")
	}

	// Both are forgotten once idle and refilled, a's place first.
	later := now.Add(2 * time.Minute)
	sh.mu.Lock()
	forgotten := s.sweepLocked(sh, later.UnixNano(), -1)
	sh.mu.Unlock()
	if forgotten != 2 || s.Len() != 0 || len(sh.collided) != 0 {
		t.Fatalf("swept %d, Len %d, %d collided; want 2, 0, 0", forgotten, s.Len(), len(sh.collided))
	}
	// A collided key outlives the one whose place it shares.
	take("a", 1, later)
	take("b", 2, later)
	sh.mu.Lock()
	s.remove(sh, h, sh.m[h])
	sh.mu.Unlock()
	if res := take("b", 2, later); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("b after a was removed: %+v; want its own bucket, one spent before", res)
	}
}
