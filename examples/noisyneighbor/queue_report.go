package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// queueReport is what a run of the queue scenario measured.
type queueReport struct {
	Fair bool
	// Workers and Work are the consumer's capacity: Workers messages at
	// once, each taking Work. Concurrency is how many messages the
	// consumer hands over at once: Workers without -fair.
	Workers, Concurrency int
	Work                 time.Duration
	// Elapsed runs from the first publish to the last message handled.
	Elapsed time.Duration
	// Bin is the width of the chart's time bins: a twentieth of Elapsed.
	Bin     time.Duration
	Tenants []queueTenant // the backlog first
}

// queueTenant is one tenant's share of a run.
type queueTenant struct {
	Tenant, Tier string
	// Messages were published; each was handled once, after Deliveries
	// deliveries in all (the others deferred).
	Messages, Deliveries int
	// P50, P99 and Max are of the wait of each message, from its publish
	// to the start of its handler.
	P50, P99, Max time.Duration
	// Done is when its last message was handled, from the first publish;
	// OthersDone is how many of the other tenant's messages were handled
	// by then.
	Done       time.Duration
	OthersDone int
	// HandledPerSecond is the number of its messages handled per second,
	// in bins of queueReport.Bin by the time each was.
	HandledPerSecond []float64
}

func newQueueReport(o queueOptions, concurrency int, start time.Time, recs []record) *queueReport {
	r := &queueReport{Fair: o.fair, Workers: o.workers, Concurrency: concurrency, Work: o.work}
	var last [2]int64 // the seq of each tenant's last message handled
	for _, rec := range recs {
		r.Elapsed = max(r.Elapsed, rec.done.Sub(start))
		last[rec.tenant] = max(last[rec.tenant], rec.seq)
	}
	r.Bin = max(r.Elapsed/chartBins, time.Millisecond)
	for i, qt := range queueTenants {
		t := queueTenant{Tenant: qt.id, Tier: qt.tier, HandledPerSecond: make([]float64, chartBins)}
		var waits []time.Duration
		for _, rec := range recs {
			if rec.tenant != i {
				if rec.seq < last[i] {
					t.OthersDone++
				}
				continue
			}
			t.Messages++
			t.Deliveries += rec.deliveries
			waits = append(waits, rec.started.Sub(rec.published))
			t.Done = max(t.Done, rec.done.Sub(start))
			if b := min(int(rec.done.Sub(start)/r.Bin), chartBins-1); b >= 0 {
				t.HandledPerSecond[b] += 1 / r.Bin.Seconds()
			}
		}
		slices.Sort(waits)
		t.P50, t.P99 = percentile(waits, 50), percentile(waits, 99)
		if len(waits) > 0 {
			t.Max = waits[len(waits)-1]
		}
		r.Tenants = append(r.Tenants, t)
	}
	return r
}

// mode names how the run consumed.
func (r *queueReport) mode() string {
	if r.Fair {
		return "fair share on"
	}
	return "fair share off"
}

// print writes the run's settings and a table of the tenants.
func (r *queueReport) print(w io.Writer) error {
	var b strings.Builder
	flood, few := r.Tenants[0], r.Tenants[1]
	capacity := "unlimited"
	if r.Work > 0 {
		capacity = strconv.FormatFloat(float64(r.Workers)/r.Work.Seconds(), 'f', 0, 64) + " messages/s at most"
	}
	fmt.Fprintf(&b, "queue, %s: %d messages of %s, then %d of %s, on a consumer with %d workers × %v (%s)",
		r.mode(), flood.Messages, flood.Tenant, few.Messages, few.Tenant, r.Workers, r.Work, capacity)
	if r.Fair {
		fmt.Fprintf(&b, ", %d messages handed over at once", r.Concurrency)
	}
	b.WriteString("\n\n")
	const row = "%-8s %-8s %8v %10v %9v %9v %9v %9v  %s\n"
	fmt.Fprintf(&b, row, "tenant", "tier", "messages", "deliveries", "wait p50", "wait p99", "wait max", "all done", "when all done")
	for i, t := range r.Tenants {
		other := r.Tenants[1-i]
		fmt.Fprintf(&b, row, t.Tenant, t.Tier, t.Messages, t.Deliveries, ms(t.P50), ms(t.P99), ms(t.Max), ms(t.Done),
			fmt.Sprintf("%d of %s's %d handled", t.OthersDone, other.Tenant, other.Messages))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// chart writes the messages handled per second per tenant over time as
// an SVG document.
func (r *queueReport) chart(w io.Writer) error {
	mode := "with tenancy's fair share"
	if !r.Fair {
		mode = "without the fair share"
	}
	colors := []string{tenantColorA, tenantColorB}
	var lines []series
	for i, t := range r.Tenants {
		lines = append(lines, series{
			label:  fmt.Sprintf("%s (%s, %d messages)", t.Tenant, t.Tier, t.Messages),
			color:  colors[i%len(colors)],
			values: t.HandledPerSecond,
		})
	}
	title := "Messages handled per second, " + mode
	sub := fmt.Sprintf("%s's backlog first, then %s's; %d workers × %v; %d bins of %v",
		r.Tenants[0].Tenant, r.Tenants[1].Tenant, r.Workers, r.Work, chartBins, r.Bin.Round(time.Millisecond))
	return writeChart(w, title, sub, "messages handled/s", r.Bin, lines)
}
