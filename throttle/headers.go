package throttle

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math"
	"net/http"
	"strconv"
	"strings"
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
func setHeaders(h http.Header, d Decision, pk string, legacy bool, now time.Time) {
	lim := d.Limits
	var policy, state strings.Builder
	policy.Grow(64)
	state.Grow(64)

	refill := seconds(time.Duration(float64(lim.Burst)/lim.Rate*float64(time.Second)), 1)
	item(&policy, "rate", "q", int64(lim.Burst), "w", refill, pk)
	item(&state, "rate", "r", int64(max(d.Remaining, 0)), "t", seconds(d.ResetAfter, 0), pk)
	for _, q := range d.Quotas {
		name := q.Period.String()
		policy.WriteString(", ")
		item(&policy, name, "q", q.Limit, "w", int64(q.Period.nominal()/time.Second), pk)
		state.WriteString(", ")
		item(&state, name, "r", max(q.Remaining, 0), "t", seconds(q.ResetAfter, 0), pk)
	}
	// Set in canonical form directly: Header.Set would re-spell the
	// names on every request. Names are case-insensitive on the wire.
	h["Ratelimit-Policy"] = []string{policy.String()}
	h["Ratelimit"] = []string{state.String()}

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

func item(b *strings.Builder, name, k1 string, v1 int64, k2 string, v2 int64, pk string) {
	b.WriteByte('"')
	b.WriteString(name)
	b.WriteString(`";`)
	b.WriteString(k1)
	b.WriteByte('=')
	b.WriteString(strconv.FormatInt(v1, 10))
	b.WriteByte(';')
	b.WriteString(k2)
	b.WriteByte('=')
	b.WriteString(strconv.FormatInt(v2, 10))
	if pk != "" {
		b.WriteString(";pk=:")
		b.WriteString(pk)
		b.WriteByte(':')
	}
}

// partitionKey is the pk parameter for a tenant: a truncated HMAC of its
// ID, so clients can tell partitions apart without learning the ID, and
// replicas that share the secret agree on it.
func partitionKey(secret []byte, id string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)[:12])
}
