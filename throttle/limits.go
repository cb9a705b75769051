package throttle

//lint:file-ignore ST1005 errors of Validate start with the name of the Limits field to fix, as Go spells it

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Limits are what one tenant may spend. The zero Limits is not valid: a
// tier must say at least its rate and burst.
type Limits struct {
	// Rate is the sustained number of requests (or cost units) per second.
	// Required, greater than zero.
	Rate float64 `json:"rate"`
	// Burst is how many requests may arrive at once after a quiet period.
	// It is also the slack for a client that paces itself at the rate:
	// units it is late for are kept up to the burst, so with a burst of 1
	// every late request loses the time it was late (see the package
	// documentation). Required, at least 1.
	Burst int `json:"burst"`
	// Quotas cap the total spent per calendar period, in UTC. At most one
	// quota per period.
	Quotas []Quota `json:"quotas,omitempty"`
	// MaxConcurrent caps the requests of one budget (a tenant, unless the
	// middleware's By… options split it) in flight at once in this
	// process. Zero means no cap.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// OnStoreFailure says what a shared store does for this tier when it
	// cannot reach its backend in time. Default [FailLocal]. The in-process
	// store never fails and ignores it.
	OnStoreFailure FailurePolicy `json:"on_store_failure,omitempty"`
}

// FailurePolicy is what a shared [Store] decides while its backend is
// unreachable or slower than its timeout.
type FailurePolicy string

// The failure policies.
const (
	// FailLocal limits each replica in process to its share of the limits:
	// rate, burst and quotas divided by the replica count the store was
	// given. It is the default.
	FailLocal FailurePolicy = "local"
	// FailOpen admits every request: availability before protection.
	FailOpen FailurePolicy = "open"
	// FailClosed refuses every request with 503: protection before
	// availability, for tiers where over-admission costs money.
	FailClosed FailurePolicy = "closed"
)

// Quota caps what a tenant spends in one calendar period.
type Quota struct {
	Limit  int64  `json:"limit"`
	Period Period `json:"period"`
}

// Period is a calendar period in UTC. Periods start at the top of the hour,
// at midnight, and on the first of the month.
type Period int

// The periods a [Quota] can have.
const (
	Hour Period = iota + 1
	Day
	Month
	numPeriods = int(Month)
)

var periodNames = [...]string{Hour: "hour", Day: "day", Month: "month"}

func (p Period) String() string {
	if p < Hour || p > Month {
		return fmt.Sprintf("Period(%d)", int(p))
	}
	return periodNames[p]
}

// MarshalText encodes the period as "hour", "day" or "month".
func (p Period) MarshalText() ([]byte, error) {
	if p < Hour || p > Month {
		return nil, fmt.Errorf("throttle: invalid period %d", int(p))
	}
	return []byte(periodNames[p]), nil
}

// UnmarshalText decodes "hour", "day" or "month".
func (p *Period) UnmarshalText(b []byte) error {
	for i, n := range periodNames {
		if n != "" && strings.EqualFold(n, string(b)) {
			*p = Period(i)
			return nil
		}
	}
	return fmt.Errorf("throttle: unknown period %q (want hour, day or month)", b)
}

// window returns the index of the period that contains t, and when the
// next one starts.
func (p Period) window(t time.Time) (int64, time.Time) {
	t = t.UTC()
	switch p {
	case Hour:
		start := t.Truncate(time.Hour)
		return start.Unix() / 3600, start.Add(time.Hour)
	case Day:
		y, m, d := t.Date()
		start := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return start.Unix() / 86400, start.AddDate(0, 0, 1)
	default:
		y, m, _ := t.Date()
		return int64(y)*12 + int64(m) - 1, time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	}
}

// nominal is the period's length for the RateLimit-Policy header.
func (p Period) nominal() time.Duration {
	switch p {
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	default:
		return 30 * 24 * time.Hour
	}
}

// Validate reports the first mistake in l, naming the field.
func (l Limits) Validate() error {
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		return fmt.Errorf("Rate must be a positive number of requests per second, got %v", l.Rate)
	}
	if l.Rate > 1e9 {
		return fmt.Errorf("Rate %v is above 1e9 per second", l.Rate)
	}
	if l.Burst < 1 {
		return fmt.Errorf("Burst must be at least 1, got %d", l.Burst)
	}
	// The bucket counts in int64 nanoseconds: a burst that takes
	// centuries to refill would overflow it.
	if float64(l.Burst)/l.Rate > maxRefill.Seconds() {
		return fmt.Errorf("Burst %d at Rate %v per second takes more than 50 years to refill", l.Burst, l.Rate)
	}
	if l.MaxConcurrent < 0 {
		return fmt.Errorf("MaxConcurrent must be 0 (no cap) or positive, got %d", l.MaxConcurrent)
	}
	switch l.OnStoreFailure {
	case "", FailLocal, FailOpen, FailClosed:
	default:
		return fmt.Errorf("OnStoreFailure must be %q, %q or %q, got %q", FailLocal, FailOpen, FailClosed, l.OnStoreFailure)
	}
	var seen [numPeriods + 1]bool
	for i, q := range l.Quotas {
		if q.Period < Hour || q.Period > Month {
			return fmt.Errorf("Quotas[%d].Period must be hour, day or month", i)
		}
		if q.Limit < 1 || q.Limit > maxQuotaLimit {
			return fmt.Errorf("Quotas[%d].Limit must be between 1 and %d, got %d", i, int64(maxQuotaLimit), q.Limit)
		}
		if seen[q.Period] {
			return fmt.Errorf("Quotas[%d]: a second quota per %s", i, q.Period)
		}
		seen[q.Period] = true
	}
	return nil
}

const (
	maxQuotaLimit = 1 << 40
	maxRefill     = 50 * 365 * 24 * time.Hour
)

// interval is the time one unit of cost takes to come back.
func (l Limits) interval() int64 {
	return max(1, int64(math.Round(float64(time.Second)/l.Rate)))
}
