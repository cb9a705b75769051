package throttle_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// keyStore is a MemoryStore that remembers the last key it was asked for.
type keyStore struct {
	*throttle.MemoryStore
	mu   sync.Mutex
	last string
}

func (s *keyStore) Take(ctx context.Context, key string, lim throttle.Limits, cost int, now time.Time) (throttle.Result, error) {
	s.mu.Lock()
	s.last = key
	s.mu.Unlock()
	return s.MemoryStore.Take(ctx, key, lim, cost, now)
}

func (s *keyStore) key() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// TestBudgetKeys: what each option makes the budget of a request, as the
// store sees it. Keys of the default name and scope are those of earlier
// releases; every other budget has a key that no other budget can have.
func TestBudgetKeys(t *testing.T) {
	acme := mustTenant(t, "acme", tiers.MustLookup("basic"))
	alice, bob := acme, acme
	alice.Subject, bob.Subject = "alice", "bob"
	globex := mustTenant(t, "globex", tiers.MustLookup("basic"))
	const apiKey = "sk_live_0123456789abcdef"
	withHeader := func(r *http.Request, v string) *http.Request {
		r.Header.Set("X-Api-Key", v)
		return r
	}
	long := strings.Repeat("x", 500)

	type req struct {
		name   string
		tn     *tenant.Tenant
		r      *http.Request
		inside string // a route to serve the middleware under, in a mux
		lookup string // the stack's route lookup, outside the router
	}
	tests := []struct {
		name     string
		limiter  []throttle.Option
		mw       []throttle.MiddlewareOption
		reqs     []req
		wantKeys []string // the key of each request; "" when only distinctness is checked
		same     [][2]int // requests that must share a budget
	}{
		{
			name:     "default: the tenant ID, as before",
			reqs:     []req{{name: "acme", tn: &acme, r: get("/")}, {name: "alice", tn: &alice, r: get("/x")}},
			wantKeys: []string{"acme", "acme"},
		},
		{
			name:     "anonymous: the client address, as before",
			limiter:  []throttle.Option{throttle.WithAnonymousLimits(basic)},
			reqs:     []req{{name: "anon", r: get("/")}},
			wantKeys: []string{"\x01ip:192.0.2.1"},
		},
		{
			name:     "named",
			limiter:  []throttle.Option{throttle.WithName("export")},
			reqs:     []req{{name: "acme", tn: &acme, r: get("/")}, {name: "globex", tn: &globex, r: get("/")}},
			wantKeys: []string{"\x02export\x1facme\x1f", "\x02export\x1fglobex\x1f"},
		},
		{
			name: "by user",
			mw:   []throttle.MiddlewareOption{throttle.ByUser()},
			reqs: []req{
				{name: "alice", tn: &alice, r: get("/")}, {name: "bob", tn: &bob, r: get("/")},
				{name: "no user", tn: &acme, r: get("/")}, {name: "alice again", tn: &alice, r: get("/y")},
			},
			wantKeys: []string{"\x02\x1facme\x1fu5:alice", "\x02\x1facme\x1fu3:bob", "\x02\x1facme\x1fu-", ""},
			same:     [][2]int{{0, 3}},
		},
		{
			name: "by route, inside the router",
			mw:   []throttle.MiddlewareOption{throttle.ByRoute()},
			reqs: []req{
				{name: "export", tn: &acme, r: httptest.NewRequest("POST", "/export", nil), inside: "POST /export"},
				{name: "order 1", tn: &acme, r: get("/orders/1"), inside: "GET /orders/{id}"},
				{name: "order 2", tn: &acme, r: get("/orders/2"), inside: "GET /orders/{id}"},
				{name: "globex's order", tn: &globex, r: get("/orders/1"), inside: "GET /orders/{id}"},
			},
			wantKeys: []string{"\x02\x1facme\x1fr12:POST /export", "\x02\x1facme\x1fr16:GET /orders/{id}", "", ""},
			same:     [][2]int{{1, 2}},
		},
		{
			name: "by route, in front of the router",
			mw:   []throttle.MiddlewareOption{throttle.ByRoute()},
			reqs: []req{
				{name: "export", tn: &acme, r: get("/export"), lookup: "POST /export"},
				{name: "no route", tn: &acme, r: get("/nowhere"), lookup: ""},
				{name: "no router", tn: &acme, r: get("/nowhere")},
			},
			wantKeys: []string{"\x02\x1facme\x1fr12:POST /export", "\x02\x1facme\x1fr-", "\x02\x1facme\x1fr-"},
			same:     [][2]int{{1, 2}},
		},
		{
			name: "by header",
			mw:   []throttle.MiddlewareOption{throttle.ByHeader("x-api-key")},
			reqs: []req{
				{name: "key 1", tn: &acme, r: withHeader(get("/"), apiKey)},
				{name: "key 2", tn: &acme, r: withHeader(get("/"), apiKey+"2")},
				{name: "no key", tn: &acme, r: get("/")},
				{name: "key 1 again", tn: &acme, r: withHeader(get("/z"), apiKey)},
				{name: "globex with key 1", tn: &globex, r: withHeader(get("/"), apiKey)},
			},
			wantKeys: []string{"", "", "\x02\x1facme\x1fh-", "", ""},
			same:     [][2]int{{0, 3}},
		},
		{
			name: "by key, user and route together",
			mw: []throttle.MiddlewareOption{throttle.ByKey(func(r *http.Request, t tenant.Tenant) (string, bool) {
				v := r.URL.Query().Get("k")
				return v, v != ""
			}), throttle.ByKey(func(r *http.Request, t tenant.Tenant) (string, bool) {
				v := r.URL.Query().Get("j")
				return v, v != ""
			}), throttle.ByUser(), throttle.ByKey(nil)},
			reqs: []req{
				{name: "ab+c", tn: &alice, r: get("/?k=ab&j=c")},
				{name: "a+bc", tn: &alice, r: get("/?k=a&j=bc")},
				{name: "none", tn: &alice, r: get("/")},
				{name: "long", tn: &alice, r: get("/?k=" + long)},
				{name: "bob ab+c", tn: &bob, r: get("/?k=ab&j=c")},
			},
			wantKeys: []string{"\x02\x1facme\x1fk2:abk1:cu5:alice", "\x02\x1facme\x1fk1:ak2:bcu5:alice", "\x02\x1facme\x1fk-k-u5:alice", "", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &keyStore{MemoryStore: newMemoryStore(t)}
			l := newLimiter(t, newClock(start), nil, append([]throttle.Option{throttle.WithStore(store)}, tt.limiter...)...)
			mw := l.Middleware(tt.mw...)
			var keys []string
			for i, rq := range tt.reqs {
				var h http.Handler = mw(okHandler)
				if rq.inside != "" {
					mux := http.NewServeMux()
					mux.Handle(rq.inside, h)
					h = mux
				}
				var w *httptest.ResponseRecorder
				if rq.lookup != "" || rq.name == "no route" {
					w = httptest.NewRecorder()
					r := rq.r
					if rq.tn != nil {
						r = r.WithContext(tenant.NewContext(r.Context(), *rq.tn))
					}
					requesttest.Routed(rq.lookup, h).ServeHTTP(w, r)
				} else {
					w, _ = serve(h, rq.tn, rq.r)
				}
				if w.Code != http.StatusOK {
					t.Fatalf("%s: status %d", rq.name, w.Code)
				}
				keys = append(keys, store.key())
				if want := tt.wantKeys[i]; want != "" && keys[i] != want {
					t.Errorf("%s: key %q, want %q", rq.name, keys[i], want)
				}
				if strings.Contains(keys[i], apiKey) || len(keys[i]) > 200 {
					t.Errorf("%s: key %q holds the header's value or the long key", rq.name, keys[i])
				}
			}
			same := map[[2]int]bool{}
			for _, p := range tt.same {
				same[p] = true
				if keys[p[0]] != keys[p[1]] {
					t.Errorf("%s and %s: keys %q and %q, want one budget", tt.reqs[p[0]].name, tt.reqs[p[1]].name, keys[p[0]], keys[p[1]])
				}
			}
			if tt.name == "default: the tenant ID, as before" {
				return
			}
			for i := range keys {
				for j := i + 1; j < len(keys); j++ {
					if !same[[2]int{i, j}] && keys[i] == keys[j] {
						t.Errorf("%s and %s share the key %q", tt.reqs[i].name, tt.reqs[j].name, keys[i])
					}
				}
			}
		})
	}
}

// TestNamedLimitersIndependent: two limiters on one store, one for the
// whole service and a strict one for an export route, keep budgets of
// their own. Unnamed, they shared the tenant's key: five exports on the
// 1/s limiter locked the tenant out of the 100/s one for four seconds.
func TestNamedLimitersIndependent(t *testing.T) {
	clk := newClock(start)
	shared := newMemoryStore(t)
	ts := tenant.MustTiers("solo")
	api, err := throttle.New(ts, map[string]throttle.Limits{"solo": {Rate: 100, Burst: 100}},
		throttle.WithClock(clk.Now), throttle.WithStore(shared))
	if err != nil {
		t.Fatal(err)
	}
	export, err := throttle.New(ts, map[string]throttle.Limits{"solo": {Rate: 1, Burst: 5}},
		throttle.WithClock(clk.Now), throttle.WithStore(shared), throttle.WithName("export"))
	if err != nil {
		t.Fatal(err)
	}
	acme := mustTenant(t, "acme", ts.MustLookup("solo"))
	ctx := context.Background()
	for i := range 5 {
		if d, _ := export.Allow(ctx, acme, 1); !d.Allowed {
			t.Fatalf("export %d refused", i+1)
		}
	}
	admitted := 0
	for range 100 {
		if d, _ := api.Allow(ctx, acme, 1); d.Allowed {
			admitted++
		}
	}
	if admitted != 100 {
		t.Errorf("the service's limiter admitted %d of 100 after 5 exports, want all", admitted)
	}
	if d, _ := export.Allow(ctx, acme, 1); d.Allowed {
		t.Error("a sixth export admitted: the service's requests refilled the export budget")
	}

	// A limiter of the same name, a replica's, shares the budget.
	replica, err := throttle.New(ts, map[string]throttle.Limits{"solo": {Rate: 1, Burst: 5}},
		throttle.WithClock(clk.Now), throttle.WithStore(shared), throttle.WithName("export"))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := replica.Allow(ctx, acme, 1); d.Allowed {
		t.Error("a replica of the export limiter admitted a sixth export")
	}
}

func TestWithNameErrors(t *testing.T) {
	for _, name := range []string{"Export", "export route", "ex\x1fport", strings.Repeat("a", 65), "é"} {
		_, err := throttle.New(tiers, tierLimits(), throttle.WithName(name))
		if err == nil || !strings.HasPrefix(err.Error(), "throttle: WithName: ") {
			t.Errorf("WithName(%q): error %v, want one naming WithName", name, err)
		}
	}
	for _, name := range []string{"", "export", "v2.export-jobs_1", strings.Repeat("a", 64)} {
		if _, err := throttle.New(tiers, tierLimits(), throttle.WithName(name)); err != nil {
			t.Errorf("WithName(%q): %v", name, err)
		}
	}
	wantPanic(t, func() { throttle.ByHeader(" ") })
}

// TestTwoLimitersOneResponse: a limiter for the whole service and a named
// one on a route both say what they decided, in items of their own names.
func TestTwoLimitersOneResponse(t *testing.T) {
	clk := newClock(start)
	ts := tenant.MustTiers("solo")
	api, err := throttle.New(ts, map[string]throttle.Limits{"solo": {Rate: 100, Burst: 100}}, throttle.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	export, err := throttle.New(ts, map[string]throttle.Limits{"solo": {Rate: 1, Burst: 5, MaxConcurrent: 1}}, throttle.WithClock(clk.Now), throttle.WithName("export"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /export", export.Middleware()(okHandler))
	h := api.Middleware()(mux)
	acme := mustTenant(t, "acme", ts.MustLookup("solo"))
	w, _ := serve(h, &acme, httptest.NewRequest("POST", "/export", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if got, want := w.Header().Values("RateLimit-Policy"), []string{
		`"rate";q=100;w=1`,
		`"export.rate";q=5;w=5, "export.concurrency";q=1;qu="concurrent-requests"`,
	}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("RateLimit-Policy = %q\nwant %q", got, want)
	}
	if got, want := w.Header().Values("RateLimit"), []string{
		`"rate";r=99;t=1`,
		`"export.rate";r=4;t=1, "export.concurrency";r=0`,
	}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("RateLimit = %q\nwant %q", got, want)
	}
	for _, f := range []string{"RateLimit-Policy", "RateLimit"} {
		if _, err := parseSFList(strings.Join(w.Header().Values(f), ", ")); err != nil {
			t.Errorf("%s, as one list: %v", f, err)
		}
	}
}
