package stamp_test

import (
	"context"
	"encoding/json"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/stamp"
)

// jwksServer serves s.JWKS() as it is at each request, counting them.
func jwksServer(t *testing.T, s *stamp.Signer) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.JWKS())
	}))
	t.Cleanup(srv.Close)
	return srv, &fetches
}

func kids(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// TestRotation: a consumer fetching the producer's JWK Set accepts stamps
// of a key added and rotated to after it started (one more fetch), and
// still those of the old key, which stays published until removed.
func TestRotation(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	srv, fetches := jwksServer(t, s)
	v, err := stamp.NewVerifier(context.Background(), issuer, stamp.WithJWKSURL(srv.URL), stamp.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := verified("acme", "basic", "")
	q := memqueue.New("orders")
	q.Publish([]byte("old"), mustStamp(t, s, ctx, "old"))
	if err := s.AddKey(newKey(t), "k2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rotate("k2"); err != nil {
		t.Fatal(err)
	}
	q.Publish([]byte("new"), mustStamp(t, s, ctx, "new"))
	var got messagetest.Seen
	q.Drain(context.Background(), stamp.Trusted(v)(got.Handler()))
	if got.Count() != 2 {
		t.Fatalf("ran %d of 2; dead letters %v", got.Count(), q.DeadLetters())
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d JWK Set fetches, want 2 (at start, and for the new key)", n)
	}
	if got := kids(t, s.JWKS()); !slices.Equal(got, []string{"k1", "k2"}) {
		t.Errorf("published %v, want k1 and k2", got)
	}

	if err := s.RemoveKey("k2"); err == nil {
		t.Error("RemoveKey of the signing key: no error")
	}
	if err := s.RemoveKey("k1"); err != nil {
		t.Fatal(err)
	}
	if got := kids(t, s.JWKS()); !slices.Equal(got, []string{"k2"}) {
		t.Errorf("published %v after RemoveKey(k1), want k2", got)
	}
	if err := s.AddKey(newKey(t), "k2"); err == nil {
		t.Error("AddKey under a key ID taken: no error")
	}
	if err := s.Rotate("k9"); err == nil {
		t.Error("Rotate to a key never added: no error")
	}
}

// TestTrustedDefersWithoutKeys: while the producer's JWK Set cannot be
// fetched, a stamped message is deferred, not dead-lettered: the message
// is not at fault.
func TestTrustedDefersWithoutKeys(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	down := httptest.NewServer(http.NotFoundHandler())
	defer down.Close()
	v, err := stamp.NewVerifier(context.Background(), issuer, stamp.WithJWKSURL(down.URL), stamp.WithClock(clk.Now),
		stamp.WithAuthzOptions(authz.WithStartWithoutKeys(), authz.WithRefreshErrorHandler(func(error) {})))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	q := memqueue.New("orders", memqueue.WithClock(clk.Now))
	q.Publish([]byte("a"), mustStamp(t, s, verified("acme", "basic", ""), "a"))
	var got messagetest.Seen
	q.Drain(context.Background(), stamp.Trusted(v)(got.Handler()))
	if got.Count() != 0 || len(q.DeadLetters()) != 0 || q.Waiting() != 1 {
		t.Fatalf("ran %d, dead %v, waiting %d: want the message deferred", got.Count(), q.DeadLetters(), q.Waiting())
	}
	if q.Drain(context.Background(), stamp.Trusted(v)(got.Handler())) != 0 {
		t.Error("the message came back before its deferral ended")
	}
	clk.Add(5 * time.Second)
	if q.Drain(context.Background(), stamp.Trusted(v)(got.Handler())) != 1 {
		t.Error("the message did not come back after 5s")
	}
}
