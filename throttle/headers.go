package throttle

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math"
	"net/http"
	"strconv"
	"time"
)

// seconds rounds d up to whole seconds, at least min.
func seconds(d time.Duration, min int64) int64 {
	s := int64(math.Ceil(d.Seconds()))
	return max(s, min)
}

// fields is what one response says in the RateLimit-Policy and RateLimit
// fields of draft-ietf-httpapi-ratelimit-headers (the two-field form): one
// "rate" item for the bucket, one per quota named after its period, and
// one "concurrency" item when the limits cap requests in flight.
type fields struct {
	limits *inForce // the limits, and their header values worked out once
	pk     string   // the opaque partition key, or ""
	prefix string   // the limiter's name and a dot, or ""

	// decided reports whether the rate and quotas were asked: a request
	// refused for concurrency never reaches them.
	decided bool
	d       *Decision
	// free is how many of the budget's slots are left, -1 with no cap.
	free int
}

// set writes the fields to h. slot, when not nil and unused, holds the
// RateLimit value instead of a new slice. A response that already carries
// fields (a second limiter on the same request, one per route inside one
// for the whole service) gets this limiter's items added to them.
func (f *fields) set(h http.Header, legacy bool, now time.Time, slot *[1]string) {
	lim, e := &f.limits.lim, f.limits.headers
	var policy []string
	if f.pk == "" {
		policy = e.value
	} else {
		policy = []string{e.header(*lim, f.prefix, f.pk)}
	}

	var value string
	if f.decided {
		d := f.d
		r, t := int64(max(d.Remaining, 0)), seconds(d.ResetAfter, 0)
		if !d.Allowed && d.Reason == ReasonRate {
			// What the client may spend stays r until Retry-After: the
			// draft wants no Retry-After before the end of t.
			t = seconds(d.RetryAfter, 1)
		}
		if e.idle != "" && r == e.idleR && t == e.idleT && len(d.Quotas) == 0 && f.free < 0 && f.pk == "" {
			value = e.idle // the usual answer, made once
		} else {
			var buf [160]byte // one allocation, for the string
			state := appendItem(buf[:0], f.prefix, "rate", "r", r, "t", t, f.pk)
			for _, q := range d.Quotas {
				state = append(state, ", "...)
				state = appendItem(state, f.prefix, q.Period.String(), "r", max(q.Remaining, 0), "t", seconds(q.ResetAfter, 0), f.pk)
			}
			if f.free >= 0 {
				state = append(state, ", "...)
				state = appendItem(state, f.prefix, "concurrency", "r", int64(f.free), "", 0, f.pk)
			}
			value = string(state)
		}
	} else if f.free >= 0 {
		var buf [96]byte
		value = string(appendItem(buf[:0], f.prefix, "concurrency", "r", int64(f.free), "", 0, f.pk))
	}

	// Set in canonical form directly: Header.Set would re-spell the
	// names on every request. Names are case-insensitive on the wire.
	if prev := h["Ratelimit-Policy"]; len(prev) > 0 {
		h["Ratelimit-Policy"] = append(prev[:len(prev):len(prev)], policy...)
		h["Ratelimit"] = append(h["Ratelimit"][:len(h["Ratelimit"]):len(h["Ratelimit"])], value)
	} else {
		h["Ratelimit-Policy"] = policy
		if slot == nil || slot[0] != "" {
			slot = new([1]string)
		}
		slot[0] = value
		h["Ratelimit"] = slot[:]
	}

	if legacy && f.decided {
		// The de facto headers describe the tightest limit only.
		d := f.d
		limit, remaining, reset := int64(lim.Burst), int64(max(d.Remaining, 0)), d.ResetAfter
		for _, q := range d.Quotas {
			if q.Remaining < remaining {
				limit, remaining, reset = q.Limit, max(q.Remaining, 0), q.ResetAfter
			}
		}
		h.Set("X-RateLimit-Limit", strconv.FormatInt(limit, 10))
		h.Set("X-RateLimit-Remaining", strconv.FormatInt(remaining, 10))
		// Rounded up, like Retry-After: a client that waits until the
		// reset it was told must find the limit reset.
		at := now.Add(reset)
		unix := at.Unix()
		if at.Nanosecond() > 0 {
			unix++
		}
		h.Set("X-RateLimit-Reset", strconv.FormatInt(unix, 10))
	}
}

// appendItem appends `"<prefix><name>";k1=v1;k2=v2;pk=:<pk>:`, leaving out
// k2 when it is "".
func appendItem(b []byte, prefix, name, k1 string, v1 int64, k2 string, v2 int64, pk string) []byte {
	b = append(b, '"')
	b = append(b, prefix...)
	b = append(b, name...)
	b = append(b, `";`...)
	b = append(b, k1...)
	b = append(b, '=')
	b = strconv.AppendInt(b, v1, 10)
	if k2 != "" {
		b = append(b, ';')
		b = append(b, k2...)
		b = append(b, '=')
		b = strconv.AppendInt(b, v2, 10)
	}
	if pk != "" {
		b = append(b, ";pk=:"...)
		b = append(b, pk...)
		b = append(b, ':')
	}
	return b
}

// partitionKey is the pk parameter of a budget: a truncated HMAC of its
// key, so clients can tell partitions apart without learning the tenant
// ID, and replicas that share the secret agree on it. The key of a tenant's
// budget under the default name and scope is its ID.
func partitionKey(secret []byte, key string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)[:12])
}

// policyEntry is the RateLimit-Policy of one set of limits, and the
// RateLimit value most responses under them carry: they change only with
// the limits, so the limiter keeps them (see Limiter.policyFor).
type policyEntry struct {
	value        []string // with the limiter's name, without a pk, set as is
	rateQ, rateW int64
	// idle is the RateLimit value, without a pk, of a request of cost 1
	// that finds its bucket full (r is the burst less one, t the time one
	// unit takes to come back): a tenant well within its limits gets it
	// on every request. It is "" for limits with quotas or a concurrency
	// cap, whose items change from one request to the next.
	idle         string
	idleR, idleT int64
}

func newPolicyEntry(lim Limits, prefix string) *policyEntry {
	e := &policyEntry{}
	e.rateQ, e.rateW = ratePolicy(lim.Rate, lim.Burst)
	e.value = []string{e.header(lim, prefix, "")}
	e.value = e.value[:1:1] // an append elsewhere must not write into it
	if len(lim.Quotas) == 0 && lim.MaxConcurrent == 0 {
		e.idleR, e.idleT = int64(lim.Burst-1), seconds(time.Duration(lim.interval()), 0)
		e.idle = string(appendItem(nil, prefix, "rate", "r", e.idleR, "t", e.idleT, ""))
	}
	return e
}

func (e *policyEntry) header(lim Limits, prefix, pk string) string {
	b := appendItem(make([]byte, 0, 96), prefix, "rate", "q", e.rateQ, "w", e.rateW, pk)
	for _, q := range lim.Quotas {
		b = append(b, ", "...)
		b = appendItem(b, prefix, q.Period.String(), "q", q.Limit, "w", int64(q.Period.nominal()/time.Second), pk)
	}
	if lim.MaxConcurrent > 0 {
		b = append(b, ", "...)
		b = appendItem(b, prefix, "concurrency", "q", int64(lim.MaxConcurrent), "", 0, "")
		b = append(b, `;qu="concurrent-requests"`...)
		if pk != "" {
			b = append(b, ";pk=:"...)
			b = append(b, pk...)
			b = append(b, ':')
		}
	}
	return string(b)
}

// ratePolicy returns the q and w of the "rate" policy item: the sustained
// rate, exactly, as q units per w whole seconds (the draft has no
// sub-second windows). Of the windows that state it, w is the longest in
// which the whole of q can be spent at once (q ≤ Burst); when the burst
// refills in less than the shortest such window, w is that shortest one,
// and q is more than the burst. So 5/s with a burst of 10 is q=10;w=2, 3/s
// with a burst of 10 is q=9;w=3, 2000/s with a burst of 200 is q=2000;w=1,
// and 0.3/s with a burst of 1 is q=3;w=10.
func ratePolicy(rate float64, burst int) (q, w int64) {
	refill := float64(burst) / rate // seconds
	w0, ok := wholeWindow(rate)
	if !ok {
		// No window states the rate to one part in a million: round it
		// down, so that a client pacing itself by it is not refused.
		w = max(1, int64(math.Ceil(refill)))
		return max(1, int64(math.Floor(rate*float64(w)))), w
	}
	w = w0
	if m := int64(math.Floor(refill/float64(w0) + 1e-9)); m > 1 {
		w = m * w0
	}
	return int64(math.Round(rate * float64(w))), w
}

// maxWindow bounds the windows wholeWindow looks at: past it a float64
// no longer holds every whole number.
const maxWindow = 1 << 53

// wholeWindow returns the shortest whole number of seconds w in which rate
// gives a whole number of units (at least one), to one part in a million:
// the denominator of the first convergent of rate's continued fraction
// that is that close. A convergent is the best approximation of all with
// a denominator as small, so none shorter is as close.
func wholeWindow(rate float64) (int64, bool) {
	// h/k are the convergents; h1/k1 the one before.
	h, k, h1, k1 := 1.0, 0.0, 0.0, 1.0
	x := rate
	for range 64 {
		a := math.Floor(x)
		h, h1 = a*h+h1, h
		k, k1 = a*k+k1, k
		if k > maxWindow {
			return 0, false
		}
		if h >= 1 && math.Abs(rate*k-h) <= 1e-6*h {
			return int64(k), true
		}
		frac := x - a
		if frac == 0 {
			break
		}
		x = 1 / frac
	}
	return 0, false
}

// policyKey identifies limits for the policy cache.
type policyKey struct {
	rate          float64
	burst         int
	maxConcurrent int
	quotas        [numPeriods]Quota
}

func keyOf(lim Limits) (policyKey, bool) {
	k := policyKey{rate: lim.Rate, burst: lim.Burst, maxConcurrent: lim.MaxConcurrent}
	if len(lim.Quotas) > len(k.quotas) {
		return k, false
	}
	copy(k.quotas[:], lim.Quotas)
	return k, true
}

// maxPolicyValues bounds the cache: tiers and overrides are few, but
// limits changed at run time must not grow it without end.
const maxPolicyValues = 1024

// policyFor returns the policy of lim, from the cache when it can. Its
// value is shared: it is set in headers, never changed.
func (l *Limiter) policyFor(lim Limits) *policyEntry {
	k, ok := keyOf(lim)
	if !ok {
		return newPolicyEntry(lim, l.prefix)
	}
	if m := l.policyValues.Load(); m != nil {
		if e, ok := (*m)[k]; ok {
			return e
		}
	}
	e := newPolicyEntry(lim, l.prefix)
	l.policyMu.Lock()
	defer l.policyMu.Unlock()
	cur := l.policyValues.Load()
	n := 0
	if cur != nil {
		n = len(*cur)
	}
	if n >= maxPolicyValues {
		return e
	}
	next := make(map[policyKey]*policyEntry, n+1)
	if cur != nil {
		for kk, vv := range *cur {
			next[kk] = vv
		}
	}
	next[k] = e
	l.policyValues.Store(&next)
	return e
}
