package stamp

import (
	"fmt"
	"testing"
	"time"
	"unsafe"
)

// TestReplayKeyKeepsSourceAndJTIApart: the stamp "b\x00c" of source "a"
// is not the stamp "c" of source "a\x00b", although the two joined with
// a NUL between them are the same string: a key of the two strings apart
// never confuses them, and neither passes as a replay of the other.
func TestReplayKeyKeepsSourceAndJTIApart(t *testing.T) {
	c := newReplayCache(64)
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(time.Hour)
	if !c.see("a\x00b", "c", "m-1", exp, now) {
		t.Fatal("the first stamp was taken for a replay")
	}
	if !c.see("a", "b\x00c", "m-2", exp, now) {
		t.Fatal(`the stamp "b\x00c" of source "a" was taken for a replay of the stamp "c" of source "a\x00b"`)
	}
	for _, k := range []struct{ source, jti, id string }{{"a\x00b", "c", "m-1"}, {"a", "b\x00c", "m-2"}} {
		if id, ok := c.lookup(k.source, k.jti, now); !ok || id != k.id {
			t.Errorf("lookup(%q, %q) = %q, %v; want %q, true", k.source, k.jti, id, ok, k.id)
		}
	}
}

// TestReplayCacheOwnsItsStrings: an entry keeps copies of the source, the
// jti and the message ID, never the caller's strings, which may share the
// memory of a transport's larger buffer.
func TestReplayCacheOwnsItsStrings(t *testing.T) {
	c := newReplayCache(64)
	now := time.Unix(1_700_000_000, 0)
	source, jti, id := "orders", "jti-1", "m-1"
	c.see(source, jti, id, now.Add(time.Hour), now)
	s := c.shard(replayKey{source, jti})
	for k, e := range s.m {
		for _, p := range []struct{ kept, given string }{{k.source, source}, {k.jti, jti}, {e.id, id}} {
			if p.kept != p.given {
				t.Fatalf("the entry holds %q, want %q", p.kept, p.given)
			}
			if unsafe.StringData(p.kept) == unsafe.StringData(p.given) {
				t.Errorf("the entry holds the caller's string %q, not a copy", p.given)
			}
		}
	}
	if len(s.m) != 1 {
		t.Fatalf("the shard holds %d entries, want 1", len(s.m))
	}
}

// TestReplayCacheForgetsTheOldest: a cache of size stamps holds the last
// ones seen, per shard first in, first out, and lookup and see agree on
// what it holds: a stamp forgotten is new again to both.
func TestReplayCacheForgetsTheOldest(t *testing.T) {
	const size = 2 * replayShards // two a shard
	c := newReplayCache(size)
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(time.Hour)
	// Stamps of one shard, so that its ring fills and turns.
	var jtis []string
	want := &c.shards[0]
	for i := 0; len(jtis) < 5; i++ {
		jti := fmt.Sprint("jti-", i)
		if c.shard(replayKey{"orders", jti}) == want {
			jtis = append(jtis, jti)
		}
	}
	for i, jti := range jtis {
		if !c.see("orders", jti, fmt.Sprint("m-", i), exp, now) {
			t.Fatalf("%s was taken for a replay the first time", jti)
		}
	}
	if n := len(want.m); n != 2 {
		t.Fatalf("the shard holds %d stamps, want 2 (its share of %d)", n, size)
	}
	for i, jti := range jtis {
		_, held := c.lookup("orders", jti, now)
		if wantHeld := i >= 3; held != wantHeld {
			t.Errorf("%s held = %v, want %v (the last two seen)", jti, held, wantHeld)
		}
	}
	// The last is a redelivery on its message and a replay on another;
	// the first, forgotten, is new again.
	if !c.see("orders", jtis[4], "m-4", exp, now) || c.see("orders", jtis[4], "other", exp, now) {
		t.Error("the last stamp seen is not remembered with its message")
	}
	if !c.see("orders", jtis[0], "other", exp, now) {
		t.Error("a forgotten stamp is still taken for a replay")
	}
}
