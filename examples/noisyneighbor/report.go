package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// chartBins is the number of points of each line of the chart.
const chartBins = 20

// report is what a run measured.
type report struct {
	Throttle bool
	// Duration is how long load was sent; Elapsed runs until the last
	// answer or timeout.
	Duration, Elapsed time.Duration
	// Workers and Work are the service's capacity: Workers requests at
	// once, each taking Work.
	Workers int
	Work    time.Duration
	// Bin is the width of the chart's time bins: a twentieth of Elapsed.
	Bin     time.Duration
	Tenants []tenantReport // the flood first
}

// tenantReport is one tenant's share of a run.
type tenantReport struct {
	Tenant, Tier, Client string
	Limits               throttle.Limits
	Rate                 float64 // offered, requests per second
	// Offered requests were due in the run; Sent went out (the others
	// found the client's in-flight limit reached). Every sent request was
	// Admitted (200), Throttled (429) or lost to an Error: a timeout, a
	// connection error or another status.
	Offered, Sent, Admitted, Throttled, Errors int
	// P50 and P99 are over every sent request, whatever its answer; a
	// request that timed out counts as its timeout.
	P50, P99 time.Duration
	// AdmittedPerSecond is the number of requests per second answered
	// 200, in bins of report.Bin by the time the answer arrived.
	AdmittedPerSecond []float64
}

// AdmittedRatio is the share of offered requests that were admitted.
func (t tenantReport) AdmittedRatio() float64 {
	if t.Offered == 0 {
		return 0
	}
	return float64(t.Admitted) / float64(t.Offered)
}

func newReport(o options, load []tenantLoad, tallies []tally, limiter *throttle.Limiter, elapsed time.Duration) *report {
	r := &report{
		Throttle: o.throttle,
		Duration: o.duration,
		Elapsed:  elapsed,
		Workers:  o.workers,
		Work:     o.work,
		Bin:      max(elapsed/chartBins, time.Millisecond),
	}
	for i, l := range load {
		tl := &tallies[i]
		tl.mu.Lock()
		tn := tenantReport{
			Tenant:            l.tenant,
			Tier:              l.tier,
			Client:            l.client,
			Rate:              l.rate,
			Offered:           tl.scheduled,
			Sent:              tl.scheduled - tl.skipped,
			AdmittedPerSecond: make([]float64, chartBins),
		}
		t, err := tenant.New(l.tenant, tenant.DefaultTiers.MustLookup(l.tier))
		if err == nil {
			tn.Limits = limiter.LimitsFor(t)
		}
		lat := make([]time.Duration, 0, len(tl.outcomes))
		for _, oc := range tl.outcomes {
			lat = append(lat, oc.latency)
			switch oc.status {
			case http.StatusOK:
				tn.Admitted++
				if b := min(int(oc.done/r.Bin), chartBins-1); b >= 0 {
					tn.AdmittedPerSecond[b] += 1 / r.Bin.Seconds()
				}
			case http.StatusTooManyRequests:
				tn.Throttled++
			default:
				tn.Errors++
			}
		}
		tl.mu.Unlock()
		slices.Sort(lat)
		tn.P50, tn.P99 = percentile(lat, 50), percentile(lat, 99)
		r.Tenants = append(r.Tenants, tn)
	}
	return r
}

// percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest value at least p % of the values are not above.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// print writes the run's settings and a table of the tenants.
func (r *report) print(w io.Writer) error {
	var b strings.Builder
	mode := "throttle on"
	if !r.Throttle {
		mode = "throttle off"
	}
	capacity := "unlimited"
	if r.Work > 0 {
		capacity = strconv.FormatFloat(float64(r.Workers)/r.Work.Seconds(), 'f', 0, 64) + " requests/s at most"
	}
	fmt.Fprintf(&b, "%s: %v of load on a service with %d workers × %v (%s)\n\n", mode, r.Duration, r.Workers, r.Work, capacity)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, t := range r.Tenants {
		limits := fmt.Sprintf("limit %s/s, burst %d", strconv.FormatFloat(t.Limits.Rate, 'f', -1, 64), t.Limits.Burst)
		if !r.Throttle {
			limits += " (not enforced)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\tsends %s/s: %s\n", t.Tenant, t.Tier, limits, strconv.FormatFloat(t.Rate, 'f', -1, 64), t.Client)
	}
	tw.Flush()
	const row = "%-8s %-8s %8v %7v %9v %6v %7v %9v %9v\n"
	fmt.Fprintf(&b, "\n"+row, "tenant", "tier", "offered", "sent", "admitted", "429", "errors", "p50", "p99")
	for _, t := range r.Tenants {
		fmt.Fprintf(&b, row, t.Tenant, t.Tier, t.Offered, t.Sent, t.Admitted, t.Throttled, t.Errors, ms(t.P50), ms(t.P99))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms writes d in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}
