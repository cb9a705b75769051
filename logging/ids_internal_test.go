package logging

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestHexIDs: the table-driven hex text of a trace and span ID is
// encoding/hex's, for every byte value at every position.
func TestHexIDs(t *testing.T) {
	for c := range 256 {
		var tid [16]byte
		var sid [8]byte
		for i := range tid {
			tid[i] = byte(c + 7*i)
		}
		for i := range sid {
			sid[i] = byte(c + 11*i)
		}
		want := hex.EncodeToString(tid[:]) + hex.EncodeToString(sid[:])
		if got := hexIDs(tid, sid); got != want {
			t.Fatalf("hexIDs(%x, %x) = %q, want %q", tid, sid, got, want)
		}
	}
}

// TestRequestIDCharacters: a new request ID is 26 characters of the
// base32 alphabet, and over a few thousand IDs every position takes every
// one of the 32 characters: no position is stuck or narrowed.
func TestRequestIDCharacters(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var seen [requestIDLen]map[byte]bool
	for i := range seen {
		seen[i] = make(map[byte]bool)
	}
	for range 4000 {
		id := newRequestID()
		if len(id) != requestIDLen || strings.Trim(id, alphabet) != "" {
			t.Fatalf("request ID %q, want 26 characters of %s", id, alphabet)
		}
		for i := range id {
			seen[i][id[i]] = true
		}
	}
	for i, s := range seen {
		if len(s) != len(alphabet) {
			t.Errorf("position %d took %d of the 32 characters", i, len(s))
		}
	}
}
