package meter

import (
	"maps"
	"math"
	"slices"
	"time"
)

// heartbeats returns the heartbeat records of the windows collect closes,
// from (a window start, plus its part) to until: one for every window part
// that had records, valued at their number, and one valued 0 for every
// window this Recorder saw (it ran in it: New, a Flush, a tick of its
// loop) that had no record and no heartbeat yet. flushMu is held.
func (r *Recorder) heartbeats(perKey map[int64]int, from, until int64) []Record {
	var beats []Record
	for _, key := range slices.Sorted(maps.Keys(perKey)) {
		beats = append(beats, r.heartbeat(key, perKey[key]))
		r.lastBeat = max(r.lastBeat, r.windowOf(key))
	}
	for _, w := range slices.Sorted(maps.Keys(r.seen)) {
		if w >= until {
			break
		}
		delete(r.seen, w)
		if w <= r.lastBeat {
			continue // it has one already
		}
		key := w
		if r.windowOf(from) == w {
			key = max(from, w) // the part that closes now
		}
		beats = append(beats, r.heartbeat(key, 0))
		r.lastBeat = w
	}
	return beats
}

// heartbeat returns the heartbeat record of the window part key: n
// records of this instance.
func (r *Recorder) heartbeat(key int64, n int) Record {
	startNs := r.windowOf(key)
	start := time.Unix(0, startNs).UTC()
	return Record{
		ID:          recordID(r.cfg.service, r.cfg.instance, "", false, HeartbeatMeter, nil, start, key-startNs),
		Meter:       HeartbeatMeter,
		Value:       float64(n),
		Unit:        UnitCount,
		WindowStart: start,
		WindowEnd:   start.Add(r.cfg.window),
		Service:     r.cfg.service,
		Instance:    r.cfg.instance,
	}
}

// sawWindow notes that the Recorder ran at the instant ns, for the
// heartbeats. flushMu is held.
func (r *Recorder) sawWindow(ns int64) {
	if r.cfg.heartbeat && !r.shut {
		r.seen[r.windowOf(ns)] = true
	}
}

// maxTenantTotals bounds the tenants of TenantTotals.
const maxTenantTotals = 10_000

// addTotals adds recs, just collected, to the totals per tenant.
func (r *Recorder) addTotals(recs []Record) {
	r.totalsMu.Lock()
	defer r.totalsMu.Unlock()
	for i := range recs {
		tenant := recs[i].TenantID
		meters := r.totals[tenant]
		if meters == nil {
			if len(r.totals) >= maxTenantTotals {
				tenant = Overflow
				meters = r.totals[tenant]
			}
			if meters == nil {
				meters = make(map[string]float64)
				r.totals[tenant] = meters
			}
		}
		meters[recs[i].Meter] = finite(meters[recs[i].Meter] + recs[i].Value)
	}
}

// TenantTotals returns the usage of each tenant, by meter, in the windows
// this Recorder has closed since New (delivered or not; records a previous
// process left are not counted): what it has billed, for a service's own
// checks and metrics. Unattributed usage is under the tenant ID "". It
// holds at most 10,000 tenants; the usage of tenants past them is summed
// under [Overflow]. The map is a copy.
func (r *Recorder) TenantTotals() map[string]map[string]float64 {
	r.totalsMu.Lock()
	defer r.totalsMu.Unlock()
	out := make(map[string]map[string]float64, len(r.totals))
	for t, m := range r.totals {
		out[t] = maps.Clone(m)
	}
	return out
}

// noBeat is lastBeat before any heartbeat.
const noBeat = math.MinInt64
