package messagetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

// Clock is a time source tests move by hand, from 2026-03-14 12:00 UTC.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at 2026-03-14 12:00 UTC.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Producer is the issuer of the stamps NewSigner makes.
const Producer = "https://orders.example.com"

// As returns a context of tenant id (basic), verified from a token: what a
// producer stamps.
func As(id string) context.Context {
	return tenant.NewContext(context.Background(), tenant.Tenant{ID: id, Tier: tenant.DefaultTiers.MustLookup("basic"), Source: tenant.SourceToken})
}

// NewSigner returns a Signer of Producer with a new P-256 key "k1" on the
// time source now.
func NewSigner(t testing.TB, now func() time.Time, opts ...stamp.Option) *stamp.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stamp.NewSigner(Producer, key, "k1", append([]stamp.Option{stamp.WithClock(now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Stamp returns s's stamp of body for tenant id (As).
func Stamp(t testing.TB, s *stamp.Signer, id, body string) map[string]string {
	t.Helper()
	attrs, err := s.Stamp(As(id), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// NewVerifier returns a Verifier of s's stamps (its JWK Set, no fetch) on
// the time source now (nil: time.Now), closed when the test ends.
func NewVerifier(t testing.TB, s *stamp.Signer, now func() time.Time) *stamp.Verifier {
	t.Helper()
	v, err := stamp.NewVerifier(context.Background(), Producer, stamp.WithJWKS(s.JWKS()), stamp.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
