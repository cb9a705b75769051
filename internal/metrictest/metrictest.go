// Package metrictest reads what an OpenTelemetry ManualReader collected,
// for the module's tests of the metrics its packages report.
package metrictest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Sum collects reader and adds the values of the int64 sum or gauge named
// name whose attribute key is value ("" key: every point).
func Sum(t testing.TB, reader *sdkmetric.ManualReader, name, key, value string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			default:
				t.Fatalf("metric %s holds %T, want int64 points", name, m.Data)
			}
			for _, p := range points {
				if v, ok := p.Attributes.Value(attribute.Key(key)); key == "" || ok && v.AsString() == value {
					total += p.Value
				}
			}
		}
	}
	return total
}
