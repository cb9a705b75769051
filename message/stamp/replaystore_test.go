package stamp_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/metrictest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
)

// fakeStore is a ReplayStore in memory that counts its calls and fails
// while down is set.
type fakeStore struct {
	mu    sync.Mutex
	first map[string]string // source/jti → message ID
	exp   map[string]time.Time
	calls int
	down  bool
}

func (f *fakeStore) Seen(_ context.Context, source, jti, id string, expires time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return false, errors.New("connection refused")
	}
	if f.first == nil {
		f.first, f.exp = map[string]string{}, map[string]time.Time{}
	}
	k := source + "/" + jti
	if got, ok := f.first[k]; ok {
		return got == id, nil
	}
	f.first[k], f.exp[k] = id, expires
	return true, nil
}

func (f *fakeStore) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

func (f *fakeStore) setDown(d bool) { f.mu.Lock(); f.down = d; f.mu.Unlock() }

// TestReplayStoreSharedByReplicas: two Verifiers sharing a store refuse a
// stamp replayed to the second on another message, pass a redelivery to
// either, and ask the store only about what their own cache does not
// hold: a redelivery a replica saw costs no call.
func TestReplayStoreSharedByReplicas(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	store := &fakeStore{}
	v1, _ := newVerifier(t, s, clk, stamp.WithReplayStore(store))
	v2, reader2 := newVerifier(t, s, clk, stamp.WithReplayStore(store))
	ok := message.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	h1, h2 := stamp.Trusted(v1)(ok), stamp.Trusted(v2)(ok)
	attrs := mustStamp(t, s, verified("acme", "basic", ""), "a")
	msg := func(id string) *message.Message {
		return &message.Message{ID: id, Source: "orders", Body: []byte("a"), Attributes: attrs}
	}
	ctx := context.Background()
	steps := []struct {
		name    string
		h       message.Handler
		id      string
		outcome message.Outcome
		reason  string
		calls   int // the store's calls after the step
	}{
		{"first delivery, replica 1", h1, "1-0", message.Acked, "", 1},
		{"redelivery, replica 1 (its cache)", h1, "1-0", message.Acked, "", 1},
		{"redelivery, replica 2 (the store)", h2, "1-0", message.Acked, "", 2},
		{"redelivery, replica 2 (its cache)", h2, "1-0", message.Acked, "", 2},
		{"replay on another message, replica 1 (its cache)", h1, "2-0", message.Rejected, "stamp:replayed", 2},
		{"replay on another message, replica 2 (its cache)", h2, "3-0", message.Rejected, "stamp:replayed", 2},
	}
	for _, st := range steps {
		o, _, reason := message.OutcomeOf(st.h.HandleMessage(ctx, msg(st.id)))
		if o != st.outcome || reason != st.reason || store.count() != st.calls {
			t.Fatalf("%s: %s %q, store called %d times; want %s %q, %d", st.name, o, reason, store.count(), st.outcome, st.reason, st.calls)
		}
	}
	// A replica that never saw the stamp asks the store, which refuses
	// it, and does not cache the replayed message as accepted.
	v3, reader3 := newVerifier(t, s, clk, stamp.WithReplayStore(store))
	h3 := stamp.Trusted(v3)(ok)
	for range 2 {
		if o, _, reason := message.OutcomeOf(h3.HandleMessage(ctx, msg("4-0"))); o != message.Rejected || reason != "stamp:replayed" {
			t.Fatalf("replay to a third replica: %s %q, want rejected stamp:replayed", o, reason)
		}
	}
	if store.count() != 4 {
		t.Errorf("the store was called %d times, want 4: a refused replay is asked again, never cached as accepted", store.count())
	}
	if n := metrictest.Sum(t, reader2, "tenancy.message.refused", "reason", "replayed") + metrictest.Sum(t, reader3, "tenancy.message.refused", "reason", "replayed"); n != 3 {
		t.Errorf("tenancy.message.refused{reason=replayed} = %d on replicas 2 and 3, want 3", n)
	}
}

// TestReplayStoreRemembersPastExpiry: the store is told to remember a
// stamp until it expires, and authz's greatest leeway (5 minutes) after.
func TestReplayStoreRemembersPastExpiry(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk, stamp.WithMaxAge(time.Hour))
	store := &fakeStore{}
	v, _ := newVerifier(t, s, clk, stamp.WithReplayStore(store))
	m := &message.Message{ID: "1-0", Source: "orders", Body: []byte("a"), Attributes: mustStamp(t, s, verified("acme", "basic", ""), "a")}
	if err := stamp.Trusted(v)(message.HandlerFunc(func(context.Context, *message.Message) error { return nil })).HandleMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(time.Hour + 5*time.Minute)
	for k, got := range store.exp {
		if !got.Equal(want) {
			t.Errorf("%s remembered until %v, want %v", k, got, want)
		}
	}
	if len(store.exp) != 1 {
		t.Errorf("the store holds %d stamps, want 1", len(store.exp))
	}
}

// TestReplayStoreDownDefers: a stamp the store cannot check is deferred,
// never refused and never accepted unchecked; a redelivery the cache
// holds still passes; once the store answers, the message runs.
func TestReplayStoreDownDefers(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	store := &fakeStore{}
	v, reader := newVerifier(t, s, clk, stamp.WithReplayStore(store))
	ran := 0
	h := stamp.Trusted(v)(message.HandlerFunc(func(context.Context, *message.Message) error { ran++; return nil }))
	ctx := context.Background()
	seen := &message.Message{ID: "1-0", Source: "orders", Body: []byte("a"), Attributes: mustStamp(t, s, verified("acme", "basic", ""), "a")}
	fresh := &message.Message{ID: "2-0", Source: "orders", Body: []byte("b"), Attributes: mustStamp(t, s, verified("acme", "basic", ""), "b")}
	if err := h.HandleMessage(ctx, seen); err != nil {
		t.Fatal(err)
	}
	store.setDown(true)
	o, after, _ := message.OutcomeOf(h.HandleMessage(ctx, fresh))
	if o != message.Deferred || after != 5*time.Second || ran != 1 {
		t.Fatalf("a stamp the store cannot check: %s after %v, handler ran %d times; want deferred after 5s and 1", o, after, ran)
	}
	if err := h.HandleMessage(ctx, seen); err != nil || ran != 2 {
		t.Fatalf("a redelivery the cache holds, store down: %v, ran %d; want it accepted", err, ran)
	}
	if n := metrictest.Sum(t, reader, "tenancy.message.refused", "", ""); n != 0 {
		t.Errorf("tenancy.message.refused = %d, want 0: a deferral is no refusal", n)
	}
	store.setDown(false)
	if err := h.HandleMessage(ctx, fresh); err != nil || ran != 3 {
		t.Fatalf("the store back: %v, ran %d; want it accepted", err, ran)
	}
}
