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

// setHeaders writes the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers (the two-field form): one "rate"
// policy for the bucket (its burst, refilled over burst/rate seconds) and
// one per quota, named after its period. pk, when not empty, is the
// opaque partition key.
// setHeaders sets the RateLimit fields of d; slot, when not nil, holds the
// RateLimit value instead of a new slice.
func setHeaders(h http.Header, d Decision, pk string, policyValue []string, legacy bool, now time.Time, slot *[1]string) {
	lim := d.Limits
	if policyValue == nil {
		policyValue = []string{policyHeader(lim, pk)}
	}
	var buf [128]byte // one allocation, for the string
	state := appendItem(buf[:0], "rate", "r", int64(max(d.Remaining, 0)), "t", seconds(d.ResetAfter, 0), pk)
	for _, q := range d.Quotas {
		state = append(state, ", "...)
		state = appendItem(state, q.Period.String(), "r", max(q.Remaining, 0), "t", seconds(q.ResetAfter, 0), pk)
	}
	// Set in canonical form directly: Header.Set would re-spell the
	// names on every request. Names are case-insensitive on the wire.
	h["Ratelimit-Policy"] = policyValue
	if slot == nil {
		slot = new([1]string)
	}
	slot[0] = string(state)
	h["Ratelimit"] = slot[:]

	if legacy {
		// The de facto headers describe the tightest limit only.
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

func appendItem(b []byte, name, k1 string, v1 int64, k2 string, v2 int64, pk string) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";`...)
	b = append(b, k1...)
	b = append(b, '=')
	b = strconv.AppendInt(b, v1, 10)
	b = append(b, ';')
	b = append(b, k2...)
	b = append(b, '=')
	b = strconv.AppendInt(b, v2, 10)
	if pk != "" {
		b = append(b, ";pk=:"...)
		b = append(b, pk...)
		b = append(b, ':')
	}
	return b
}

// partitionKey is the pk parameter for a tenant: a truncated HMAC of its
// ID, so clients can tell partitions apart without learning the ID, and
// replicas that share the secret agree on it.
func partitionKey(secret []byte, id string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)[:12])
}

// policyHeader is the RateLimit-Policy value of lim: it changes only with
// the limits, so the limiter keeps it (see Limiter.policyValue).
func policyHeader(lim Limits, pk string) string {
	refill := seconds(time.Duration(float64(lim.Burst)/lim.Rate*float64(time.Second)), 1)
	policy := appendItem(make([]byte, 0, 64), "rate", "q", int64(lim.Burst), "w", refill, pk)
	for _, q := range lim.Quotas {
		policy = append(policy, ", "...)
		policy = appendItem(policy, q.Period.String(), "q", q.Limit, "w", int64(q.Period.nominal()/time.Second), pk)
	}
	return string(policy)
}

// policyKey identifies limits for the policy header cache.
type policyKey struct {
	rate   float64
	burst  int
	quotas [numPeriods]Quota
}

func keyOf(lim Limits) (policyKey, bool) {
	k := policyKey{rate: lim.Rate, burst: lim.Burst}
	if len(lim.Quotas) > len(k.quotas) {
		return k, false
	}
	copy(k.quotas[:], lim.Quotas)
	return k, true
}

// maxPolicyValues bounds the cache: tiers and overrides are few, but
// limits changed at run time must not grow it without end.
const maxPolicyValues = 1024

// policyValue returns the header value of lim, from the cache when it can.
// The slice is shared: it is set in headers, never changed.
func (l *Limiter) policyValue(lim Limits) []string {
	k, ok := keyOf(lim)
	if !ok {
		return nil
	}
	if m := l.policyValues.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	v := []string{policyHeader(lim, "")}
	v = v[:1:1] // an append elsewhere must not write into it
	l.policyMu.Lock()
	defer l.policyMu.Unlock()
	cur := l.policyValues.Load()
	n := 0
	if cur != nil {
		n = len(*cur)
	}
	if n >= maxPolicyValues {
		return v
	}
	next := make(map[policyKey][]string, n+1)
	if cur != nil {
		for kk, vv := range *cur {
			next[kk] = vv
		}
	}
	next[k] = v
	l.policyValues.Store(&next)
	return v
}
