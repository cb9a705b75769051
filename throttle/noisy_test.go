package throttle_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/tenant"
)

// TestNoisyNeighbour runs two tenants through one middleware for 60
// simulated seconds: a basic tenant (5/s, burst 10) floods at 1,000
// requests a second while a premium tenant (500/s, burst 1000) sends a
// steady 200 a second. The flood is held to exactly 10 + 5·60 requests and
// the premium tenant is served every single request.
func TestNoisyNeighbour(t *testing.T) {
	const (
		duration = 60 * time.Second
		floodGap = time.Millisecond     // 1,000 a second
		steadGap = 5 * time.Millisecond // 200 a second
	)
	clk := newClock(start)
	l := newLimiter(t, clk, nil)
	h := l.Middleware()(okHandler)
	noisy := mustTenant(t, "noisy-basic", tiers.MustLookup("basic"))
	steady := mustTenant(t, "steady-premium", tiers.MustLookup("premium"))

	statuses := map[string]map[int]int{"noisy": {}, "steady": {}}
	var noisyAdmitted []time.Duration
	for at := time.Duration(0); at <= duration; at += floodGap {
		clk.Set(start.Add(at))
		w, rec := serve(h, &noisy, get("/"))
		statuses["noisy"][w.Code]++
		if w.Code == http.StatusOK {
			noisyAdmitted = append(noisyAdmitted, at)
		} else if w.Header().Get("Retry-After") == "" || rec.Rejection().Reason != "rate" {
			t.Fatalf("at %v: refusal without Retry-After or with reason %q", at, rec.Rejection().Reason)
		}
		if at%steadGap == 0 {
			w, _ := serve(h, &steady, get("/"))
			statuses["steady"][w.Code]++
		}
	}

	floodSent := int(duration/floodGap) + 1 // both ends included
	steadySent := int(duration/steadGap) + 1
	const noisyWant = 10 + 5*60
	want := map[string]map[int]int{
		"noisy":  {200: noisyWant, 429: floodSent - noisyWant},
		"steady": {200: steadySent},
	}
	if diff := cmp.Diff(want, statuses); diff != "" {
		t.Errorf("statuses by tenant (-want +got):\n%s", diff)
	}
	// And exactly when: the burst on the first ten requests, then one
	// every 200ms.
	var wantTimes []time.Duration
	for i := range 10 {
		wantTimes = append(wantTimes, time.Duration(i)*floodGap)
	}
	for k := 1; k <= 5*60; k++ {
		wantTimes = append(wantTimes, time.Duration(k)*200*time.Millisecond)
	}
	if diff := cmp.Diff(wantTimes, noisyAdmitted); diff != "" {
		t.Errorf("times the flood was admitted (-want +got):\n%s", diff)
	}
}

// TestNoisyNeighbourGoroutines does the same with real goroutines: 16
// flood for the basic tenant while one sends the premium tenant's steady
// share, the clock frozen during each round and stepped between rounds by
// one basic interval. Every round admits exactly one more flood request
// (after the first, which admits the burst), and every premium request.
func TestNoisyNeighbourGoroutines(t *testing.T) {
	const (
		rounds    = 20
		flooders  = 16
		perFlood  = 10                     // requests per flooder per round
		step      = 200 * time.Millisecond // one basic interval
		perSteady = 40                     // 200/s over 200ms
	)
	clk := newClock(start)
	l := newLimiter(t, clk, nil)
	h := l.Middleware()(okHandler)
	noisy := mustTenant(t, "noisy-basic", tiers.MustLookup("basic"))
	steady := mustTenant(t, "steady-premium", tiers.MustLookup("premium"))

	var noisyOK, noisyRefused, steadyOK, steadyRefused atomic.Int64
	send := func(tn *tenant.Tenant, n int, okc, refused *atomic.Int64) {
		for range n {
			if w, _ := serve(h, tn, get("/")); w.Code == http.StatusOK {
				okc.Add(1)
			} else {
				refused.Add(1)
			}
		}
	}
	for round := range rounds + 1 {
		before := noisyOK.Load()
		var wg sync.WaitGroup
		begin := make(chan struct{})
		for range flooders {
			wg.Go(func() { <-begin; send(&noisy, perFlood, &noisyOK, &noisyRefused) })
		}
		wg.Go(func() { <-begin; send(&steady, perSteady, &steadyOK, &steadyRefused) })
		close(begin)
		wg.Wait()

		want := int64(1)
		if round == 0 {
			want = 10
		}
		if got := noisyOK.Load() - before; got != want {
			t.Fatalf("round %d: flood admitted %d, want exactly %d", round, got, want)
		}
		clk.Advance(step)
	}
	got := [4]int64{noisyOK.Load(), noisyRefused.Load(), steadyOK.Load(), steadyRefused.Load()}
	sent := int64((rounds + 1) * flooders * perFlood)
	want := [4]int64{10 + rounds, sent - 10 - rounds, (rounds + 1) * perSteady, 0}
	if got != want {
		t.Errorf("flood ok/refused, steady ok/refused = %v, want %v", got, want)
	}
}
