package logging

import (
	"encoding/hex"
	"math"
	"math/rand/v2"
	"strconv"
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

// TestThousandths: a float that is a whole number of thousandths is
// written as strconv's shortest 'f' format writes it — every duration_ms
// up to 300 ms, both signs, and random ones up to the bound — and any
// other float is left to strconv.
func TestThousandths(t *testing.T) {
	check := func(f float64) {
		t.Helper()
		want := strconv.FormatFloat(f, 'f', -1, 64)
		if got, ok := appendThousandths(nil, f); ok && string(got) != want {
			t.Fatalf("appendThousandths(%v) = %q, want %q", f, got, want)
		}
	}
	for us := int64(-300_000); us <= 300_000; us++ {
		f := float64(us) / 1000
		if _, ok := appendThousandths(nil, f); !ok && us != 0 {
			t.Fatalf("%d µs as milliseconds (%v) was not taken as thousandths", us, f)
		}
		check(f)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		n := r.Int64N(1e15)
		check(float64(n) / 1000)
		check(-float64(n) / 1000)
		check(r.Float64() * math.Pow(10, float64(r.IntN(30)-10)))
	}
	for _, f := range []float64{math.Copysign(0, -1), 0, 1e12, -1e12, 999_999_999_999.999, 1e-7, 0.0005, 0.1 + 0.2} {
		check(f)
	}
}
