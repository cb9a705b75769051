package meter

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// EMF is a [Sink] that writes records in the CloudWatch Embedded Metric
// Format: one JSON event per line, which CloudWatch Logs (the awslogs
// driver on ECS, Lambda's stdout) turns into metrics without an API call.
//
// Each record is one event with one metric, Usage, in the record's unit,
// whose dimensions are Service, Tier and Meter: the number of CloudWatch
// metrics stays bounded however many tenants there are. The tenant, the
// record ID, the window and the meter's own dimensions are properties of
// the event, searchable in Logs Insights and not billed as metrics. One
// value per event keeps each property attached to exactly the value it
// describes, far below EMF's limit of 100 metrics per event.
type EMF struct {
	mu        sync.Mutex
	lw        lineWriter
	namespace string
}

// NewEMF returns a sink writing events in namespace to w.
func NewEMF(w io.Writer, namespace string) (*EMF, error) {
	if namespace == "" {
		return nil, fmt.Errorf("meter: NewEMF needs a CloudWatch namespace")
	}
	return &EMF{lw: lineWriter{w: w}, namespace: namespace}, nil
}

var emfUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true,
	"Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// Write implements [Sink].
func (s *EMF) Write(_ context.Context, records []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.lw.write(records, func(r *Record) any { return s.event(r) }); err != nil {
		return fmt.Errorf("meter: EMF: %w", err)
	}
	return nil
}

func (s *EMF) event(r *Record) map[string]any {
	unit := r.Unit
	if !emfUnits[unit] {
		unit = "None"
	}
	tier := r.Tier
	if tier == "" {
		tier = "unknown"
	}
	ev := map[string]any{
		"_aws": map[string]any{
			"Timestamp": r.WindowEnd.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  s.namespace,
				"Dimensions": [][]string{{"Service", "Tier", "Meter"}},
				"Metrics":    []any{map[string]any{"Name": "Usage", "Unit": unit}},
			}},
		},
		"Service":      r.Service,
		"Tier":         tier,
		"Meter":        r.Meter,
		"Usage":        r.Value,
		"TenantId":     r.TenantID,
		"RecordId":     r.ID,
		"WindowStart":  r.WindowStart.UnixMilli(),
		"WindowEnd":    r.WindowEnd.UnixMilli(),
		"Unattributed": r.Unattributed,
	}
	for k, v := range r.Dimensions {
		// Root keys of the envelope win over a meter's dimension of the
		// same name.
		if _, taken := ev[k]; !taken {
			ev[k] = v
		}
	}
	return ev
}
