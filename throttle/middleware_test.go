package throttle_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// sfItem is one member of a Structured Field List (RFC 8941) whose items
// are strings, as in the RateLimit and RateLimit-Policy fields.
type sfItem struct {
	Name   string
	Params []sfParam
}

// sfParam is a parameter; Value is an int64, a string, a []byte, a bool or
// a token (sfToken).
type sfParam struct {
	Key   string
	Value any
}

type sfToken string

// parseSFList parses a List of String Items with parameters, strictly
// enough to catch a malformed field: anything else is an error.
func parseSFList(s string) ([]sfItem, error) {
	var out []sfItem
	i := 0
	ows := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return nil, fmt.Errorf("at %d: want a string item", i)
		}
		name, n, err := sfString(s[i:])
		if err != nil {
			return nil, err
		}
		i += n
		item := sfItem{Name: name}
		for i < len(s) && s[i] == ';' {
			i++
			for i < len(s) && s[i] == ' ' {
				i++
			}
			k := i
			if i >= len(s) || !(s[i] >= 'a' && s[i] <= 'z' || s[i] == '*') {
				return nil, fmt.Errorf("at %d: want a parameter key", i)
			}
			for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9' || strings.IndexByte("_-.*", s[i]) >= 0) {
				i++
			}
			p := sfParam{Key: s[k:i], Value: true}
			if i < len(s) && s[i] == '=' {
				i++
				v, n, err := sfBareItem(s[i:])
				if err != nil {
					return nil, fmt.Errorf("parameter %s: %w", p.Key, err)
				}
				p.Value, i = v, i+n
			}
			item.Params = append(item.Params, p)
		}
		out = append(out, item)
		ows()
		if i == len(s) {
			return out, nil
		}
		if s[i] != ',' {
			return nil, fmt.Errorf("at %d: want ',' between members, got %q", i, s[i])
		}
		i++
		ows()
		if i == len(s) {
			return nil, errors.New("trailing comma")
		}
	}
}

func sfString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			if i+1 == len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return "", 0, errors.New("bad escape in string")
			}
			i++
			b.WriteByte(s[i])
		case c == '"':
			return b.String(), i + 1, nil
		case c < 0x20 || c > 0x7e:
			return "", 0, fmt.Errorf("byte %#x in string", c)
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated string")
}

func sfBareItem(s string) (any, int, error) {
	switch {
	case s == "":
		return nil, 0, errors.New("empty value")
	case s[0] == '-' || s[0] >= '0' && s[0] <= '9':
		n := 0
		if s[0] == '-' {
			n = 1
		}
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n < len(s) && s[n] == '.' {
			return nil, 0, errors.New("decimals are not expected here")
		}
		if digits := strings.TrimPrefix(s[:n], "-"); digits == "" || len(digits) > 15 {
			return nil, 0, fmt.Errorf("bad integer %q", s[:n])
		}
		v, err := strconv.ParseInt(s[:n], 10, 64)
		return v, n, err
	case s[0] == '"':
		return sfString(s)
	case s[0] == ':':
		end := strings.IndexByte(s[1:], ':')
		if end < 0 {
			return nil, 0, errors.New("unterminated byte sequence")
		}
		b, err := base64.StdEncoding.DecodeString(s[1 : 1+end])
		return b, end + 2, err
	case s[0] == '?':
		if len(s) < 2 || (s[1] != '0' && s[1] != '1') {
			return nil, 0, errors.New("bad boolean")
		}
		return s[1] == '1', 2, nil
	case s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z' || s[0] == '*':
		n := 1
		for n < len(s) && strings.IndexByte(",; \t", s[n]) < 0 {
			n++
		}
		return sfToken(s[:n]), n, nil
	}
	return nil, 0, fmt.Errorf("unexpected %q", s[0])
}

func TestParseSFList(t *testing.T) {
	got, err := parseSFList(`"rate";q=10;w=2, "day";r=-3;pk=:AQID:;x;t="a\"b";k=tok/en`)
	if err != nil {
		t.Fatal(err)
	}
	want := []sfItem{
		{"rate", []sfParam{{"q", int64(10)}, {"w", int64(2)}}},
		{"day", []sfParam{{"r", int64(-3)}, {"pk", []byte{1, 2, 3}}, {"x", true}, {"t", `a"b`}, {"k", sfToken("tok/en")}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{``, `rate`, `"rate";Q=1`, `"rate";q=1.5`, `"rate",`, `"rate" "day"`, `"rate";q=`, `"ra`, `"rate";q=1234567890123456`} {
		if _, err := parseSFList(bad); err == nil {
			t.Errorf("parseSFList(%q) accepted it", bad)
		}
	}
}

// rl builds the expected parse of one member.
func rl(name string, kv ...any) sfItem {
	it := sfItem{Name: name}
	for i := 0; i < len(kv); i += 2 {
		v := kv[i+1]
		if n, ok := v.(int); ok {
			v = int64(n)
		}
		it.Params = append(it.Params, sfParam{kv[i].(string), v})
	}
	return it
}

func TestMiddlewareHeaders(t *testing.T) {
	quotas := throttle.Limits{Rate: 50, Burst: 100, Quotas: []throttle.Quota{
		{Limit: 1000, Period: throttle.Day}, {Limit: 20000, Period: throttle.Month}, {Limit: 100, Period: throttle.Hour}}}
	tests := []struct {
		name        string
		lim         throttle.Limits
		requests    int
		policy      string
		state       string
		wantPolicy  []sfItem
		wantState   []sfItem
		legacy      bool
		wantLegacy  [3]string // limit, remaining, reset
		clockOffset time.Duration
	}{
		{
			name: "rate only", lim: basic, requests: 1,
			policy:     `"rate";q=10;w=2`,
			state:      `"rate";r=9;t=1`,
			wantPolicy: []sfItem{rl("rate", "q", 10, "w", 2)},
			wantState:  []sfItem{rl("rate", "r", 9, "t", 1)},
		},
		{
			name: "burst partly spent", lim: basic, requests: 4,
			policy: `"rate";q=10;w=2`,
			state:  `"rate";r=6;t=1`, // 800ms until full, rounded up
		},
		{
			name: "slow rate", lim: throttle.Limits{Rate: 0.4, Burst: 2}, requests: 1,
			policy: `"rate";q=2;w=5`,
			state:  `"rate";r=1;t=3`, // 2.5s until full, rounded up
		},
		{
			name: "quotas", lim: quotas, requests: 1,
			// From 12:00 on 14 March: 12 hours to midnight, 17.5 days to
			// 1 April, an hour to 13:00.
			policy: `"rate";q=100;w=2, "day";q=1000;w=86400, "month";q=20000;w=2592000, "hour";q=100;w=3600`,
			state:  `"rate";r=99;t=1, "day";r=999;t=43200, "month";r=19999;t=1512000, "hour";r=99;t=3600`,
			wantPolicy: []sfItem{
				rl("rate", "q", 100, "w", 2), rl("day", "q", 1000, "w", 86400),
				rl("month", "q", 20000, "w", 2592000), rl("hour", "q", 100, "w", 3600)},
			wantState: []sfItem{
				rl("rate", "r", 99, "t", 1), rl("day", "r", 999, "t", 43200),
				rl("month", "r", 19999, "t", 1512000), rl("hour", "r", 99, "t", 3600)},
		},
		{
			name: "legacy rate", lim: basic, requests: 1, legacy: true, clockOffset: 900 * time.Millisecond,
			policy: `"rate";q=10;w=2`,
			state:  `"rate";r=9;t=1`,
			// Full again at 12:00:01.1, said as 12:00:02: never before.
			wantLegacy: [3]string{"10", "9", strconv.FormatInt(start.Unix()+2, 10)},
		},
		{
			name: "legacy tightest is the quota", legacy: true, requests: 2,
			lim:        throttle.Limits{Rate: 5, Burst: 10, Quotas: []throttle.Quota{{Limit: 3, Period: throttle.Day}}},
			policy:     `"rate";q=10;w=2, "day";q=3;w=86400`,
			state:      `"rate";r=8;t=1, "day";r=1;t=43200`,
			wantLegacy: [3]string{"3", "1", strconv.FormatInt(start.Unix()+43200, 10)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(start.Add(tt.clockOffset))
			l, tn := soloLimiter(t, clk, tt.lim)
			var opts []throttle.MiddlewareOption
			if tt.legacy {
				opts = append(opts, throttle.WithLegacyHeaders())
			}
			h := l.Middleware(opts...)(okHandler)
			var w *httptest.ResponseRecorder
			for range tt.requests {
				w, _ = serve(h, &tn, get("/"))
				if w.Code != http.StatusOK {
					t.Fatalf("status %d, want 200", w.Code)
				}
			}
			hdr := w.Result().Header
			if got := hdr.Values("RateLimit-Policy"); len(got) != 1 || got[0] != tt.policy {
				t.Errorf("RateLimit-Policy = %q\nwant %q", got, tt.policy)
			}
			if got := hdr.Values("RateLimit"); len(got) != 1 || got[0] != tt.state {
				t.Errorf("RateLimit = %q\nwant %q", got, tt.state)
			}
			for _, f := range []struct {
				name string
				want []sfItem
			}{{"RateLimit-Policy", tt.wantPolicy}, {"RateLimit", tt.wantState}} {
				got, err := parseSFList(hdr.Get(f.name))
				if err != nil {
					t.Errorf("%s is not a Structured Field list: %v", f.name, err)
					continue
				}
				if f.want == nil {
					continue
				}
				if diff := cmp.Diff(f.want, got); diff != "" {
					t.Errorf("%s parsed (-want +got):\n%s", f.name, diff)
				}
			}
			legacy := [3]string{hdr.Get("X-RateLimit-Limit"), hdr.Get("X-RateLimit-Remaining"), hdr.Get("X-RateLimit-Reset")}
			if legacy != tt.wantLegacy {
				t.Errorf("X-RateLimit-Limit, -Remaining, -Reset = %q, want %q", legacy, tt.wantLegacy)
			}
		})
	}
}

// policyOf returns the RateLimit-Policy field a tenant on lim is sent.
func policyOf(t *testing.T, lim throttle.Limits) string {
	t.Helper()
	l, tn := soloLimiter(t, newClock(start), lim)
	w, _ := serve(l.Middleware()(okHandler), &tn, get("/"))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	return w.Header().Get("RateLimit-Policy")
}

// TestRateLimitPolicyAnyRate: the "rate" item states the sustained rate
// exactly, as q units per w whole seconds (the draft has no sub-second
// windows), over the longest window whose q can be spent at once, or the
// shortest that states the rate when the burst refills faster than that.
func TestRateLimitPolicyAnyRate(t *testing.T) {
	tests := []struct {
		rate  float64
		burst int
		want  string
	}{
		{5, 10, `"rate";q=10;w=2`},
		{2000, 200, `"rate";q=2000;w=1`}, // was q=200;w=1: a tenth of the rate
		{3, 10, `"rate";q=9;w=3`},        // was q=10;w=4: 2.5/s
		{0.3, 1, `"rate";q=3;w=10`},
		{7, 2, `"rate";q=7;w=1`},
		{1.0 / 3, 4, `"rate";q=4;w=12`},
		{0.4, 2, `"rate";q=2;w=5`},
		{0.001, 10, `"rate";q=10;w=10000`},
		{100, 1, `"rate";q=100;w=1`},
		{2.5, 11, `"rate";q=10;w=4`},
		{1e9, 1e9, `"rate";q=1000000000;w=1`},
		{1e6, 1e9, `"rate";q=1000000000;w=1000`},
		{math.Pi, 1, `"rate";q=355;w=113`}, // to one part in a million
	}
	for _, tt := range tests {
		if got := policyOf(t, throttle.Limits{Rate: tt.rate, Burst: tt.burst}); got != tt.want {
			t.Errorf("rate %v, burst %d: RateLimit-Policy %s, want %s", tt.rate, tt.burst, got, tt.want)
		}
	}

	// Whatever the rate and burst: a valid field whose q/w is the rate to
	// one part in a million, and whose q fits in the burst whenever w is
	// no longer than the burst takes to refill.
	rng := rand.New(rand.NewPCG(12, 0))
	for range 2000 {
		var lim throttle.Limits
		switch rng.IntN(3) {
		case 0: // whole rates
			lim = throttle.Limits{Rate: float64(1 + rng.IntN(100_000)), Burst: 1 + rng.IntN(100_000)}
		case 1: // tenths and hundredths, as written in files
			lim = throttle.Limits{Rate: float64(1+rng.IntN(10_000)) / []float64{10, 100}[rng.IntN(2)], Burst: 1 + rng.IntN(1000)}
		default: // anything
			lim = throttle.Limits{Rate: math.Exp(rng.Float64()*20 - 8), Burst: 1 + rng.IntN(1_000_000)}
		}
		if lim.Validate() != nil {
			continue
		}
		got := policyOf(t, lim)
		items, err := parseSFList(got)
		if err != nil || len(items) != 1 || len(items[0].Params) != 2 {
			t.Fatalf("%+v: RateLimit-Policy %q: %v", lim, got, err)
		}
		q, w := items[0].Params[0].Value.(int64), items[0].Params[1].Value.(int64)
		if q < 1 || w < 1 {
			t.Fatalf("%+v: %s: q and w must be at least 1", lim, got)
		}
		if rate := float64(q) / float64(w); math.Abs(rate-lim.Rate) > 1e-6*lim.Rate {
			t.Errorf("%+v: %s says %v/s", lim, got, rate)
		}
		if refill := float64(lim.Burst) / lim.Rate; float64(w) <= refill && q > int64(lim.Burst) {
			t.Errorf("%+v: %s: q above the burst in a window of %ds, shorter than the %.3gs refill", lim, got, w, refill)
		}
	}
}

// TestConcurrencyFields: a tier that caps requests in flight says so in
// both fields, on every response, refusals for concurrency included.
func TestConcurrencyFields(t *testing.T) {
	clk := newClock(start)
	l, tn := soloLimiter(t, clk, throttle.Limits{Rate: 5, Burst: 10, MaxConcurrent: 2})
	inside, hold := make(chan struct{}), make(chan struct{})
	seen := make(chan string, 2) // what the held requests' handlers were told
	h := l.Middleware(throttle.WithPartitionKey([]byte("0123456789abcdef")))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			seen <- w.Header().Get("RateLimit")
			inside <- struct{}{}
			<-hold
		}
	}))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(hold)
	wg.Go(func() { serve(h, &tn, get("/slow")) })
	<-inside // the first holds a slot
	w, _ := serve(h, &tn, get("/"))
	if w.Code != http.StatusOK {
		t.Fatalf("second in flight: status %d", w.Code)
	}
	policy, state := w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit")

	pk := func(s string) string { // the pk, the same for every item
		t.Helper()
		items, err := parseSFList(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		last := items[len(items)-1].Params
		return base64.StdEncoding.EncodeToString(last[len(last)-1].Value.([]byte))
	}
	p := pk(state)
	wantPolicy := `"rate";q=10;w=2;pk=:` + p + `:, "concurrency";q=2;qu="concurrent-requests";pk=:` + p + `:`
	if policy != wantPolicy {
		t.Errorf("RateLimit-Policy = %s\nwant %s", policy, wantPolicy)
	}
	// Two in flight, this one included: none left.
	if want := `"rate";r=8;t=1;pk=:` + p + `:, "concurrency";r=0;pk=:` + p + `:`; state != want {
		t.Errorf("RateLimit = %s\nwant %s", state, want)
	}
	if got, want := <-seen, `"rate";r=9;t=1;pk=:`+p+`:, "concurrency";r=1;pk=:`+p+`:`; got != want {
		t.Errorf("first request's RateLimit = %s\nwant %s", got, want)
	}

	// With a second held, the third in flight is refused: the rate was not
	// asked, so the fields say only that no slot is free.
	wg.Go(func() { serve(h, &tn, get("/slow")) })
	<-inside
	<-seen
	w, _ = serve(h, &tn, get("/"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third in flight: status %d, want 429", w.Code)
	}
	if got := w.Header().Get("RateLimit-Policy"); got != wantPolicy {
		t.Errorf("refused: RateLimit-Policy = %s\nwant %s", got, wantPolicy)
	}
	if got, want := w.Header().Get("RateLimit"), `"concurrency";r=0;pk=:`+p+`:`; got != want {
		t.Errorf("refused: RateLimit = %s, want %s", got, want)
	}
}

// TestMiddlewareNoTenantIDInHeaders: whatever the response, its headers
// never carry the tenant ID, plain or in base64.
func TestMiddlewareNoTenantIDInHeaders(t *testing.T) {
	const id = "acme-corp-4242"
	forms := []string{id, base64.StdEncoding.EncodeToString([]byte(id)), base64.RawStdEncoding.EncodeToString([]byte(id)),
		base64.URLEncoding.EncodeToString([]byte(id)), base64.RawURLEncoding.EncodeToString([]byte(id))}
	clk := newClock(start)
	lim := throttle.Limits{Rate: 1, Burst: 2, MaxConcurrent: 5, Quotas: []throttle.Quota{{Limit: 2, Period: throttle.Day}}}
	l, tn := soloLimiter(t, clk, lim)
	tn.ID = id
	h := l.Middleware(throttle.WithLegacyHeaders(), throttle.WithPartitionKey([]byte("0123456789abcdef0123456789abcdef")))(okHandler)
	statuses := map[int]bool{}
	for range 3 { // 200, 200, then 429 for the quota
		clk.Advance(time.Minute)
		w, _ := serve(h, &tn, get("/"))
		statuses[w.Code] = true
		for name, values := range w.Result().Header {
			for _, v := range append([]string{name}, values...) {
				for _, f := range forms {
					if strings.Contains(strings.ToLower(v), strings.ToLower(f)) {
						t.Errorf("status %d: header %s: %q carries the tenant ID as %q", w.Code, name, v, f)
					}
				}
			}
		}
	}
	if !statuses[200] || !statuses[429] {
		t.Errorf("statuses %v, want both 200 and 429 checked", statuses)
	}
}

func TestMiddlewarePartitionKey(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	pks := func(l *throttle.Limiter, tn tenant.Tenant, opts ...throttle.MiddlewareOption) []string {
		t.Helper()
		w, _ := serve(l.Middleware(opts...)(okHandler), &tn, get("/"))
		var out []string
		for _, f := range []string{"RateLimit-Policy", "RateLimit"} {
			items, err := parseSFList(w.Header().Get(f))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, it := range items {
				var pk []byte
				for _, p := range it.Params {
					if p.Key == "pk" {
						pk, _ = p.Value.([]byte)
					}
				}
				if pk == nil {
					out = append(out, "")
					continue
				}
				if len(pk) != 12 {
					t.Errorf("%s %q: pk of %d bytes, want 12", f, it.Name, len(pk))
				}
				out = append(out, base64.StdEncoding.EncodeToString(pk))
			}
		}
		return out
	}
	limits := tierLimits()
	limits["basic"] = throttle.Limits{Rate: 5, Burst: 10, Quotas: []throttle.Quota{{Limit: 100, Period: throttle.Day}}}
	clk := newClock(start)
	l := newLimiter(t, clk, limits)
	replica := newLimiter(t, clk, limits)
	acme := mustTenant(t, "acme", tiers.MustLookup("basic"))
	globex := mustTenant(t, "globex", tiers.MustLookup("basic"))

	a1 := pks(l, acme, throttle.WithPartitionKey(secret))
	a2 := pks(l, acme, throttle.WithPartitionKey(secret))
	aReplica := pks(replica, acme, throttle.WithPartitionKey(secret))
	g := pks(l, globex, throttle.WithPartitionKey(secret))
	aOtherSecret := pks(l, acme, throttle.WithPartitionKey([]byte("another secret of 32 bytes......")))
	none := pks(l, acme)

	if len(a1) != 4 || a1[0] == "" {
		t.Fatalf("pk of acme = %q, want one per member of both fields", a1)
	}
	for _, pk := range a1 {
		if pk != a1[0] {
			t.Errorf("pk differs between members: %q", a1)
		}
	}
	if diff := cmp.Diff(a1, a2); diff != "" {
		t.Errorf("pk not stable for a tenant (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(a1, aReplica); diff != "" {
		t.Errorf("two replicas with one secret disagree (-one +other):\n%s", diff)
	}
	if g[0] == a1[0] {
		t.Errorf("acme and globex share the pk %q", g[0])
	}
	if aOtherSecret[0] == a1[0] {
		t.Errorf("the pk does not depend on the secret")
	}
	if diff := cmp.Diff([]string{"", "", "", ""}, none); diff != "" {
		t.Errorf("pk without WithPartitionKey (-want +got):\n%s", diff)
	}
}

// problem decodes a refusal, checking its media type.
func problem(t *testing.T, w *httptest.ResponseRecorder) tenant.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p tenant.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", w.Body, err)
	}
	if p.Detail == "" || p.Title == "" {
		t.Errorf("problem %+v without a title or detail", p)
	}
	return p
}

func TestMiddlewareRateLimited(t *testing.T) {
	clk := newClock(start)
	l, tn := soloLimiter(t, clk, throttle.Limits{Rate: 0.4, Burst: 1}) // one every 2.5s
	calls := 0
	h := l.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))

	type outcome struct {
		Status     int
		RetryAfter string
		RateLimit  string
		Rejection  tenant.Rejection
	}
	at := func(d time.Duration) outcome {
		clk.Set(start.Add(d))
		w, rec := serve(h, &tn, get("/"))
		o := outcome{w.Code, w.Header().Get("Retry-After"), w.Header().Get("RateLimit"), rec.Rejection()}
		if w.Code == http.StatusTooManyRequests {
			p := problem(t, w)
			want := tenant.Problem{Type: tenant.ProblemType("rate-limited"), Status: 429, RetryAfter: p.RetryAfter, Title: p.Title, Detail: p.Detail}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
			if strconv.Itoa(p.RetryAfter) != o.RetryAfter {
				t.Errorf("problem retry_after %d, header %q", p.RetryAfter, o.RetryAfter)
			}
		}
		return o
	}
	refused := tenant.Rejection{By: "throttle", Reason: "rate", Status: 429}
	got := []outcome{
		at(0),
		at(0),                                    // 2.5s to wait: 3
		at(2 * time.Second),                      // 0.5s: 1
		at(2500*time.Millisecond - 1),            // 1ns: 1
		at(2500 * time.Millisecond),              // due
		at(2500*time.Millisecond + 1),            // 2.5s - 1ns: 3
		at(3*time.Second + 900*time.Millisecond), // 1.1s: 2
		at(4*time.Second + 999*time.Millisecond), // 1ms: 1
	}
	want := []outcome{
		{200, "", `"rate";r=0;t=3`, tenant.Rejection{}},
		{429, "3", `"rate";r=0;t=3`, refused},
		{429, "1", `"rate";r=0;t=1`, refused},
		{429, "1", `"rate";r=0;t=1`, refused},
		{200, "", `"rate";r=0;t=3`, tenant.Rejection{}},
		{429, "3", `"rate";r=0;t=3`, refused},
		{429, "2", `"rate";r=0;t=2`, refused},
		{429, "1", `"rate";r=0;t=1`, refused},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if calls != 2 {
		t.Errorf("handler called %d times, want 2", calls)
	}
}

func TestMiddlewareQuotaExceeded(t *testing.T) {
	tests := []struct {
		name      string
		now       string
		period    throttle.Period
		wantRetry string
	}{
		{"day, fractional wait", "2026-03-14T23:59:58.25Z", throttle.Day, "2"},
		{"day, whole hours", "2026-03-14T21:00:00Z", throttle.Day, "10800"},
		{"hour", "2026-03-14T21:59:00.5Z", throttle.Hour, "60"},
		{"month over new year", "2026-12-31T23:00:00Z", throttle.Month, "3600"},
		{"month in a leap February", "2028-02-28T00:00:00Z", throttle.Month, strconv.Itoa(2 * 86400)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(utc(tt.now))
			l, tn := soloLimiter(t, clk, throttle.Limits{Rate: 100, Burst: 10, Quotas: []throttle.Quota{{Limit: 2, Period: tt.period}}})
			h := l.Middleware()(okHandler)
			for range 2 {
				if w, _ := serve(h, &tn, get("/")); w.Code != 200 {
					t.Fatalf("within the quota: %d", w.Code)
				}
			}
			w, rec := serve(h, &tn, get("/"))
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("status %d, want 429", w.Code)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if p := problem(t, w); p.Type != tenant.ProblemType("quota-exceeded") || p.Status != 429 {
				t.Errorf("problem %+v, want type quota-exceeded, status 429", p)
			}
			want := tenant.Rejection{By: "throttle", Reason: "quota", Status: 429}
			if diff := cmp.Diff(want, rec.Rejection()); diff != "" {
				t.Errorf("Rejection (-want +got):\n%s", diff)
			}
			// The headers tell the same story.
			items, err := parseSFList(w.Header().Get("RateLimit"))
			if err != nil || len(items) != 2 {
				t.Fatalf("RateLimit %q: %v", w.Header().Get("RateLimit"), err)
			}
			if diff := cmp.Diff(rl(tt.period.String(), "r", 0, "t", mustAtoi(t, tt.wantRetry)), items[1]); diff != "" {
				t.Errorf("quota member (-want +got):\n%s", diff)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMiddlewareConcurrency(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []throttle.MiddlewareOption
		want int
	}{
		{"default 429", nil, http.StatusTooManyRequests},
		{"WithConcurrencyStatus(429)", []throttle.MiddlewareOption{throttle.WithConcurrencyStatus(429)}, http.StatusTooManyRequests},
		{"WithConcurrencyStatus(0) is the default", []throttle.MiddlewareOption{throttle.WithConcurrencyStatus(0)}, http.StatusTooManyRequests},
		{"WithConcurrencyStatus(503)", []throttle.MiddlewareOption{throttle.WithConcurrencyStatus(503)}, http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(start)
			l, tn := soloLimiter(t, clk, throttle.Limits{Rate: 1000, Burst: 100, MaxConcurrent: 2})
			inside, hold := make(chan struct{}), make(chan struct{})
			h := l.Middleware(tt.opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					inside <- struct{}{}
					<-hold
				}
			}))
			done := make(chan int, 2)
			for range 2 {
				go func() {
					w, _ := serve(h, &tn, get("/slow"))
					done <- w.Code
				}()
				<-inside
			}

			w, rec := serve(h, &tn, get("/"))
			if w.Code != tt.want {
				t.Errorf("third in flight: status %d, want %d", w.Code, tt.want)
			}
			if got := w.Header().Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1", got)
			}
			if p := problem(t, w); p.Type != tenant.ProblemType("concurrency-limited") || p.Status != tt.want {
				t.Errorf("problem %+v, want type concurrency-limited, status %d", p, tt.want)
			}
			want := tenant.Rejection{By: "throttle", Reason: "concurrency", Status: tt.want}
			if diff := cmp.Diff(want, rec.Rejection()); diff != "" {
				t.Errorf("Rejection (-want +got):\n%s", diff)
			}
			// Another tenant is not affected.
			other := tn
			other.ID = "someone-else"
			if w, _ := serve(h, &other, get("/")); w.Code != 200 {
				t.Errorf("another tenant: status %d, want 200", w.Code)
			}

			close(hold)
			for range 2 {
				if code := <-done; code != 200 {
					t.Errorf("held request: status %d", code)
				}
			}
			// Both slots are free again: two more at once fit.
			if w, _ := serve(h, &tn, get("/")); w.Code != 200 {
				t.Errorf("after release: status %d, want 200", w.Code)
			}
		})
	}
}

func TestMiddlewareAllowedRecord(t *testing.T) {
	clk := newClock(start)
	l, tn := soloLimiter(t, clk, basic)
	var gaveWriter, sawWriter http.ResponseWriter
	h := l.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawWriter = w
		if got, ok := tenant.FromContext(r.Context()); !ok || got.ID != tn.ID {
			t.Errorf("handler sees tenant %+v, %v", got, ok)
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	spy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gaveWriter = w
		h.ServeHTTP(w, r)
	})
	w, rec := serve(spy, &tn, get("/"))
	if w.Code != http.StatusTeapot {
		t.Fatalf("status %d: the handler did not answer", w.Code)
	}
	if sawWriter != gaveWriter {
		t.Errorf("the handler got a %T, want the writer the throttle was given (no wrapper of its own)", sawWriter)
	}
	if !rec.Rejection().IsZero() {
		t.Errorf("Rejection = %+v on an allowed request", rec.Rejection())
	}
	// Without a Record in the context the middleware works all the same.
	r := get("/").WithContext(tenant.NewContext(context.Background(), tn))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusTeapot {
		t.Errorf("without a Record: status %d", w.Code)
	}
}

func TestMiddlewareNoTenant(t *testing.T) {
	l := newLimiter(t, newClock(start), nil)
	called := false
	h := l.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	w, rec := serve(h, nil, get("/"))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", w.Code)
	}
	if called {
		t.Error("the handler ran without a tenant")
	}
	if p := problem(t, w); p.Type != tenant.ProblemType("tenant-required") || p.Status != 401 {
		t.Errorf("problem %+v, want type tenant-required, status 401", p)
	}
	if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
	}
	want := tenant.Rejection{By: "throttle", Reason: "tenant_required", Status: 401}
	if diff := cmp.Diff(want, rec.Rejection()); diff != "" {
		t.Errorf("Rejection (-want +got):\n%s", diff)
	}
}

func TestMiddlewareAnonymous(t *testing.T) {
	clk := newClock(start)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	l := newLimiter(t, clk, nil, throttle.WithAnonymousLimits(throttle.Limits{Rate: 1, Burst: 2}, trusted...))
	h := l.Middleware(throttle.WithPartitionKey([]byte("0123456789abcdef")))(okHandler)
	req := func(peer string, xff ...string) int {
		r := get("/")
		r.RemoteAddr = peer
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		w, rec := serve(h, nil, r)
		if w.Code == http.StatusOK && !strings.Contains(w.Header().Get("RateLimit-Policy"), `"rate";q=2;w=2`) {
			t.Errorf("anonymous policy %q", w.Header().Get("RateLimit-Policy"))
		}
		if strings.Contains(w.Header().Get("RateLimit"), "pk=") {
			t.Errorf("anonymous RateLimit %q has a pk", w.Header().Get("RateLimit"))
		}
		if w.Code == http.StatusTooManyRequests && rec.Rejection().Reason != "rate" {
			t.Errorf("Rejection %+v", rec.Rejection())
		}
		return w.Code
	}
	tests := []struct {
		name string
		peer string
		xff  []string
		want int
	}{
		{"direct client 1", "203.0.113.7:1234", nil, 200},
		{"direct client 2", "203.0.113.7:5678", nil, 200},
		{"direct client 3: out of burst", "203.0.113.7:1234", nil, 429},
		{"spoofed XFF from an untrusted peer: same bucket", "203.0.113.7:1234", []string{"198.51.100.1"}, 429},
		{"spoofed XFF list from an untrusted peer", "203.0.113.7:1234", []string{"198.51.100.1, 198.51.100.2"}, 429},
		{"through a trusted proxy: the client's bucket", "10.0.0.1:80", []string{"198.51.100.1"}, 200},
		{"same client, another proxy", "10.9.9.9:80", []string{"198.51.100.1"}, 200},
		{"same client: out of burst", "10.0.0.1:80", []string{"198.51.100.1"}, 429},
		{"client forging its left entry", "10.0.0.1:80", []string{"6.6.6.6, 198.51.100.1"}, 429},
		{"first client through a proxy", "10.0.0.1:80", []string{"203.0.113.7"}, 429},
		{"proxies are not clients", "10.0.0.1:80", []string{"198.51.100.9, 10.0.0.2"}, 200},
		{"IPv6 proxy", "[fd00::1]:443", []string{"2001:db8::5"}, 200},
		{"IPv4-mapped peer is the same client", "[::ffff:203.0.113.7]:1234", nil, 429},
	}
	for _, tt := range tests {
		if got := req(tt.peer, tt.xff...); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}

	// A tenant still uses its own bucket, not its address's.
	tn := mustTenant(t, "acme", tiers.MustLookup("basic"))
	r := get("/")
	r.RemoteAddr = "203.0.113.7:1234"
	if w, _ := serve(h, &tn, r); w.Code != 200 {
		t.Errorf("tenant from an exhausted address: status %d, want 200", w.Code)
	}
}

func TestMiddlewareCost(t *testing.T) {
	clk := newClock(start)
	l, tn := soloLimiter(t, clk, basic) // burst 10, one back every 200ms
	h := l.Middleware(throttle.WithCost(func(r *http.Request) int {
		switch r.URL.Path {
		case "/export":
			return 4
		case "/huge":
			return 1000
		case "/free":
			return 0
		}
		return 1
	}))(okHandler)
	type outcome struct {
		Status     int
		RateLimit  string
		RetryAfter string
	}
	do := func(path string) outcome {
		w, _ := serve(h, &tn, get(path))
		return outcome{w.Code, w.Header().Get("RateLimit"), w.Header().Get("Retry-After")}
	}
	got := []outcome{do("/export"), do("/"), do("/export"), do("/free"), do("/export")}
	want := []outcome{
		{200, `"rate";r=6;t=1`, ""},
		{200, `"rate";r=5;t=1`, ""},
		{200, `"rate";r=1;t=2`, ""},
		{200, `"rate";r=0;t=2`, ""}, // a cost below 1 is 1
		// 4 more take 800ms: on a refusal t ends with Retry-After, as the
		// draft asks (no Retry-After before the end of t).
		{429, `"rate";r=0;t=1`, "1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A cost above the burst is spent as the burst, so it can succeed.
	clk.Advance(2 * time.Second)
	if got := do("/huge"); got.Status != 200 || got.RateLimit != `"rate";r=0;t=2` {
		t.Errorf("cost above the burst on a full bucket: %+v, want 200 with nothing left", got)
	}
}

func TestMiddlewareStoreError(t *testing.T) {
	for _, tt := range []struct {
		name      string
		store     *fakeStore
		wantRetry string
	}{
		{"error", &fakeStore{err: errors.New("redis: dial tcp 10.1.2.3:6379: connection refused")}, "1"},
		{"store refuses, failing closed", &fakeStore{res: throttle.Result{Reason: throttle.ReasonStore}}, "1"},
		{"store refuses, retry in 2.5s", &fakeStore{res: throttle.Result{Reason: throttle.ReasonStore, RetryAfter: 2500 * time.Millisecond}}, "3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(t, newClock(start), nil, throttle.WithStore(tt.store), throttle.WithLogger(slog.New(slog.DiscardHandler)))
			called := false
			h := l.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			tn := mustTenant(t, "acme", tiers.MustLookup("basic"))
			w, rec := serve(h, &tn, get("/"))
			if w.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", w.Code)
			}
			if called {
				t.Error("the handler ran")
			}
			p := problem(t, w)
			if p.Type != tenant.ProblemType("throttle-unavailable") || p.Status != 503 {
				t.Errorf("problem %+v, want type throttle-unavailable, status 503", p)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if strings.Contains(w.Body.String(), "redis") || strings.Contains(w.Body.String(), "10.1.2.3") {
				t.Errorf("body %q carries the store's error", w.Body)
			}
			// The limits decided nothing: no fields that would say they did.
			if got := w.Header().Values("RateLimit"); got != nil {
				t.Errorf("RateLimit %q sent without a decision", got)
			}
			if got := w.Header().Values("RateLimit-Policy"); got != nil {
				t.Errorf("RateLimit-Policy %q sent without a decision", got)
			}
			want := tenant.Rejection{By: "throttle", Reason: "store_unavailable", Status: 503}
			if diff := cmp.Diff(want, rec.Rejection()); diff != "" {
				t.Errorf("Rejection (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMiddlewarePanics(t *testing.T) {
	l := newLimiter(t, newClock(start), nil)
	for name, opt := range map[string]throttle.MiddlewareOption{
		"WithConcurrencyStatus(500)": throttle.WithConcurrencyStatus(500),
		"WithConcurrencyStatus(200)": throttle.WithConcurrencyStatus(200),
		"WithPartitionKey(15 bytes)": throttle.WithPartitionKey([]byte("0123456789abcde")),
		"WithPartitionKey(empty)":    throttle.WithPartitionKey([]byte{}),
		"WithBodyTimeout(-1s)":       throttle.WithBodyTimeout(-time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			wantPanic(t, func() { l.Middleware(opt) })
		})
	}
	// Nil and zero mean the default: no panic.
	l.Middleware(nil, throttle.WithPartitionKey(nil), throttle.WithCost(nil), throttle.WithConcurrencyStatus(0),
		throttle.WithBodyBuffer(0), throttle.WithBodyTimeout(0), throttle.ByKey(nil))
}

// TestRefusalHandler: a service answers refusals its own way; the
// refusal is still recorded, and the RateLimit fields and Retry-After are
// set before the handler writes.
func TestRefusalHandler(t *testing.T) {
	clk := newClock(start)
	l, tn := soloLimiter(t, clk, throttle.Limits{Rate: 0.4, Burst: 1})
	var got []throttle.Refusal
	h := l.Middleware(throttle.WithRefusalHandler(func(w http.ResponseWriter, r *http.Request, ref throttle.Refusal) {
		got = append(got, ref)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ref.Status)
		fmt.Fprintf(w, `{"error":"slow down","reason":%q}`, ref.Reason)
	}))(okHandler)
	serve(h, &tn, get("/"))
	w, rec := serve(h, &tn, get("/"))
	if w.Code != http.StatusTooManyRequests || w.Body.String() != `{"error":"slow down","reason":"rate"}` ||
		w.Header().Get("Retry-After") != "3" || w.Header().Get("RateLimit") != `"rate";r=0;t=3` {
		t.Errorf("refusal: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if want := []throttle.Refusal{{Reason: throttle.ReasonRate, Status: 429, RetryAfter: 3}}; !slices.Equal(got, want) {
		t.Errorf("handler got %+v, want %+v", got, want)
	}
	if rej := rec.Rejection(); rej.By != "throttle" || rej.Reason != "rate" || rej.Status != 429 {
		t.Errorf("rejection %+v, want the throttle's rate refusal recorded", rej)
	}
	// The default answer is WriteRefusal's problem.
	w2 := httptest.NewRecorder()
	throttle.WriteRefusal(w2, get("/"), throttle.Refusal{Reason: throttle.ReasonQuota, Status: 429, RetryAfter: 60})
	if p := problem(t, w2); p.Type != tenant.ProblemType("quota-exceeded") || p.RetryAfter != 60 || w2.Header().Get("Retry-After") != "60" {
		t.Errorf("WriteRefusal: %+v %v", p, w2.Header())
	}
}

// TestMiddlewareDecidesAtTheRequestsTime: with the system clock, the
// throttle decides at the time the stack read once for every layer
// (request.State.Start); with an injected clock, at the clock's.
func TestMiddlewareDecidesAtTheRequestsTime(t *testing.T) {
	ts := tenant.MustTiers("solo")
	tn := mustTenant(t, "tenant-solo", ts.MustLookup("solo"))
	lim := map[string]throttle.Limits{"solo": {Rate: 1, Burst: 1}}
	serveAt := func(h http.Handler, at time.Time) int {
		w := httptest.NewRecorder()
		outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w, r, _ = requesttest.StartAt(w, r, at)
			h.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), tn)))
		})
		outer.ServeHTTP(w, get("/"))
		return w.Code
	}
	now := time.Now()
	later := now.Add(10 * time.Second) // the bucket of one has refilled

	system, err := throttle.New(ts, lim)
	if err != nil {
		t.Fatal(err)
	}
	h := system.Middleware()(okHandler)
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		at := now
		if i > 0 {
			at = later
		}
		if got := serveAt(h, at); got != want {
			t.Errorf("system clock, request %d at %v: status %d, want %d", i+1, at.Sub(now), got, want)
		}
	}

	injected, err := throttle.New(ts, lim, throttle.WithClock(time.Now))
	if err != nil {
		t.Fatal(err)
	}
	h = injected.Middleware()(okHandler)
	if got := serveAt(h, now); got != http.StatusOK {
		t.Errorf("injected clock, first request: status %d, want 200", got)
	}
	if got := serveAt(h, later); got != http.StatusTooManyRequests {
		t.Errorf("injected clock, second request, its state 10s later: status %d, want 429 (the clock's time, not the request's)", got)
	}
}

// TestRateLimitFieldOfAFullBucket: the RateLimit value of a request that
// finds its bucket full, which the limiter makes once per set of limits,
// is the one it would write for any other decision, with the limiter's
// name; any other decision (a bucket partly spent, a cost of 2, a
// partition key) gets its own.
func TestRateLimitFieldOfAFullBucket(t *testing.T) {
	clk := newClock(start)
	l, tn := soloLimiter(t, clk, basic, throttle.WithName("api"))
	cost := 1
	h := l.Middleware(throttle.WithCost(func(*http.Request) int { return cost }))(okHandler)
	withPK := l.Middleware(throttle.WithPartitionKey([]byte("0123456789abcdef")))(okHandler)
	for _, step := range []struct {
		h       http.Handler
		cost    int
		advance time.Duration
		want    string
	}{
		{h, 1, 0, `"api.rate";r=9;t=1`},
		{h, 1, 0, `"api.rate";r=8;t=1`},
		{h, 1, time.Minute, `"api.rate";r=9;t=1`},
		{h, 2, time.Minute, `"api.rate";r=8;t=1`},
		{h, 1, time.Minute, `"api.rate";r=9;t=1`},
	} {
		clk.Advance(step.advance)
		cost = step.cost
		w, _ := serve(step.h, &tn, get("/"))
		if got := w.Header().Values("RateLimit"); len(got) != 1 || got[0] != step.want {
			t.Errorf("cost %d after %v: RateLimit = %q, want %q", step.cost, step.advance, got, step.want)
		}
	}
	clk.Advance(time.Minute)
	w, _ := serve(withPK, &tn, get("/"))
	if got := w.Header().Get("RateLimit"); !strings.HasPrefix(got, `"api.rate";r=9;t=1;pk=:`) {
		t.Errorf("with a partition key: RateLimit = %q, want the full bucket's with the pk", got)
	}
}
