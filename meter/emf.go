package meter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
//
// Whatever the strings of a record hold, its event is one line of valid
// JSON within CloudWatch's limits: one dimension set of 3 dimensions (at
// most 30), one metric (at most 100), dimension values of at most 1024
// printable ASCII characters (others become _, a blank value "unknown"),
// and the other strings (the tenant and record IDs, the meter's own
// dimensions) cut to 1024 characters, so that the event of a record with
// a meter's at most [MaxDimensions] dimensions stays far below the 256 KB
// of a CloudWatch Logs event. Keys of the envelope (_aws, Usage,
// TenantId...) win over a meter's dimension of the same name. Lines are
// written whole, as by [JSONLines].
//
// CloudWatch takes no metric data older than two weeks: the event of a
// record delivered later stays in Logs, without its metric.
type EMF struct {
	mu        sync.Mutex
	lw        lineWriter
	namespace string
}

// NewEMF returns a sink writing events in namespace to w. A namespace is
// 1 to 255 of the characters CloudWatch accepts (letters, digits, space
// and . - _ / # :), not all spaces, and does not start with "AWS/".
func NewEMF(w io.Writer, namespace string) (*EMF, error) {
	if err := validNamespace(namespace); err != nil {
		return nil, err
	}
	return &EMF{lw: lineWriter{w: w}, namespace: namespace}, nil
}

// Limits of CloudWatch that the events keep to.
const (
	emfMaxNamespace = 255
	// emfMaxValue is the most characters of a dimension value, and of a
	// meter's dimension value, which is a property of the event.
	emfMaxValue = 1024
)

func validNamespace(ns string) error {
	switch {
	case ns == "":
		return errors.New("meter: NewEMF needs a CloudWatch namespace")
	case len(ns) > emfMaxNamespace:
		return fmt.Errorf("meter: NewEMF: the namespace is %d characters, CloudWatch takes at most %d", len(ns), emfMaxNamespace)
	case strings.HasPrefix(ns, "AWS/"):
		return fmt.Errorf("meter: NewEMF: the namespace %q starts with AWS/, which CloudWatch keeps for AWS services", ns)
	case strings.TrimSpace(ns) == "":
		return errors.New("meter: NewEMF: the namespace is blank")
	}
	for _, c := range []byte(ns) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(" ._/#:-", c) >= 0) {
			return fmt.Errorf("meter: NewEMF: the namespace %q has a character CloudWatch does not take (letters, digits, space and . - _ / # :)", ns)
		}
	}
	return nil
}

// dimensionValue returns v as CloudWatch takes a dimension value: at most
// emfMaxValue characters of printable ASCII, others replaced by _, and
// "unknown" for a blank one.
func dimensionValue(v string) string {
	if strings.TrimSpace(v) == "" {
		return "unknown"
	}
	b := make([]byte, 0, min(len(v), emfMaxValue))
	for _, r := range v {
		if len(b) == emfMaxValue {
			break
		}
		if r < ' ' || r > '~' {
			r = '_'
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// propertyValue returns v cut to emfMaxValue characters.
func propertyValue(v string) string {
	n := 0
	for i := range v {
		if n == emfMaxValue {
			return v[:i]
		}
		n++
	}
	return v
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
	ev := map[string]any{
		"_aws": map[string]any{
			"Timestamp": r.WindowEnd.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  s.namespace,
				"Dimensions": [][]string{{"Service", "Tier", "Meter"}},
				"Metrics":    []any{map[string]any{"Name": "Usage", "Unit": unit}},
			}},
		},
		"Service":      dimensionValue(r.Service),
		"Tier":         dimensionValue(r.Tier),
		"Meter":        dimensionValue(r.Meter),
		"Usage":        r.Value,
		"TenantId":     propertyValue(r.TenantID),
		"RecordId":     propertyValue(r.ID),
		"WindowStart":  r.WindowStart.UnixMilli(),
		"WindowEnd":    r.WindowEnd.UnixMilli(),
		"Unattributed": r.Unattributed,
	}
	for k, v := range r.Dimensions {
		// Root keys of the envelope win over a meter's dimension of the
		// same name.
		if _, taken := ev[k]; !taken {
			ev[k] = propertyValue(v)
		}
	}
	return ev
}
