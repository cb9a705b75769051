package redisstore_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/throttle"
	"github.com/tenancykit/tenancy/throttle/redisstore"
)

// beats counts the heartbeats a client has had answered: the calls on the
// set of live replicas, whose key ends in "replicas".
type beats struct{ n atomic.Int64 }

func (h *beats) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *beats) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "evalsha" || cmd.Name() == "eval" {
			for _, a := range cmd.Args() {
				if s, ok := a.(string); ok && strings.HasSuffix(s, "replicas") && err == nil {
					h.n.Add(1)
				}
			}
		}
		return err
	}
}
func (h *beats) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// waitBeat makes s decide at now, which starts a heartbeat when one is
// due, and waits until one more heartbeat has been answered.
func waitBeat(t *testing.T, s *redisstore.Store, h *beats, now time.Time) {
	t.Helper()
	before := h.n.Load()
	if _, err := s.Take(context.Background(), "acme", throttle.Limits{Rate: 1000, Burst: 1000}, 1, now); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.n.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat answered within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	// The count is recorded just after the call returns.
	time.Sleep(10 * time.Millisecond)
}

// TestReplicasCountThemselves: without WithReplicas, stores count the live
// replicas of their prefix in Redis; a replica that closes is dropped, and
// the others believe a lower count only once no higher one has been seen
// for the heartbeat's lifetime (10s), so that a Redis that lost the set
// cannot make them think their share is larger than it is.
func TestReplicasCountThemselves(t *testing.T) {
	srv := testservers.Redis(t)
	hook := &beats{}
	rdb := newClient(t, srv.Addr)
	rdb.AddHook(hook)
	a := newStore(t, rdb)
	newStore(t, newClient(t, srv.Addr))
	c := newStore(t, newClient(t, srv.Addr))
	other := newStore(t, newClient(t, srv.Addr), redisstore.WithPrefix("another-service:"))
	fixed := newStore(t, newClient(t, srv.Addr), redisstore.WithReplicas(5))
	if st := c.Stats(); st.Replicas != 3 {
		t.Fatalf("the third replica warmed: stats %+v, want 3 replicas (another prefix is another service)", st)
	}
	if st := other.Stats(); st.Replicas != 1 {
		t.Fatalf("another service: stats %+v, want 1 replica", st)
	}
	if st := fixed.Stats(); st.Replicas != 5 {
		t.Fatalf("WithReplicas(5): stats %+v, want 5 replicas whatever is counted", st)
	}
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	waitBeat(t, a, hook, t0)
	if st := a.Stats(); st.Replicas != 4 {
		t.Fatalf("the first replica's next heartbeat: stats %+v, want 4 (three and the fixed one)", st)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fixed.Close(); err != nil {
		t.Fatal(err)
	}
	// Heartbeats are taken every 2s of the decisions' time.
	before := hook.n.Load()
	if _, err := a.Take(context.Background(), "acme", throttle.Limits{Rate: 1000, Burst: 1000}, 1, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := hook.n.Load() - before; n != 0 {
		t.Fatalf("%d heartbeats 1s after the last, want none before 2s", n)
	}
	waitBeat(t, a, hook, t0.Add(2*time.Second))
	if st := a.Stats(); st.Replicas != 4 {
		t.Fatalf("two replicas closed, 2s later: stats %+v, want still 4", st)
	}
	waitBeat(t, a, hook, t0.Add(10*time.Second-time.Millisecond))
	if st := a.Stats(); st.Replicas != 4 {
		t.Fatalf("just under 10s after the last count of 4: stats %+v, want still 4", st)
	}
	waitBeat(t, a, hook, t0.Add(12*time.Second))
	if st := a.Stats(); st.Replicas != 2 {
		t.Fatalf("12s after the last count of 4: stats %+v, want 2", st)
	}
	// A higher count is believed at once.
	d := newStore(t, newClient(t, srv.Addr))
	waitBeat(t, a, hook, t0.Add(14*time.Second))
	if st, dst := a.Stats(), d.Stats(); st.Replicas != 3 || dst.Replicas != 3 {
		t.Fatalf("a replica joined: stats %+v and %+v, want 3 replicas", st, dst)
	}
}
