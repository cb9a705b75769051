package meter_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
)

func TestEMFEnvelope(t *testing.T) {
	records := []meter.Record{
		{ID: "id-acme", TenantID: "acme", Tier: "premium", Meter: "api.calls", Value: 3, Unit: meter.UnitCount},
		{ID: "id-globex", TenantID: "globex", Meter: "jobs.run", Value: 1.5, Unit: meter.UnitSeconds,
			Dimensions: map[string]string{"region": "eu", "size": "s"}},
		{ID: "id-none", Unattributed: true, Meter: "odd", Value: 7, Unit: "Furlongs"},
		// A meter dimension cannot replace a key of the envelope.
		{ID: "id-clash", TenantID: "initech", Tier: "basic", Meter: "api.calls", Value: 1, Unit: meter.UnitCount,
			Dimensions: map[string]string{"Service": "forged", "TenantId": "forged"}},
	}
	for i := range records {
		records[i].Service, records[i].Instance = "orders", "i-1"
		records[i].WindowStart, records[i].WindowEnd = start, start.Add(time.Minute)
	}
	wantUnit := []string{"Count", "Seconds", "None", "Count"}
	wantTier := []string{"premium", "unknown", "unknown", "basic"}

	var buf bytes.Buffer
	s, err := meter.NewEMF(&buf, "Tenancy/Orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), records); err != nil {
		t.Fatal(err)
	}

	var events []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v", len(events)+1, err)
		}
		events = append(events, ev)
	}
	if len(events) != len(records) {
		t.Fatalf("%d events, want one per record (%d)", len(events), len(records))
	}
	for i, ev := range events {
		rec := records[i]
		t.Run(rec.ID, func(t *testing.T) {
			wantAWS := map[string]any{
				"Timestamp": float64(rec.WindowEnd.UnixMilli()),
				"CloudWatchMetrics": []any{map[string]any{
					"Namespace":  "Tenancy/Orders",
					"Dimensions": []any{[]any{"Service", "Tier", "Meter"}},
					"Metrics":    []any{map[string]any{"Name": "Usage", "Unit": wantUnit[i]}},
				}},
			}
			if diff := cmp.Diff(wantAWS, ev["_aws"]); diff != "" {
				t.Errorf("_aws (-want +got):\n%s", diff)
			}

			// What the EMF specification asks of any event.
			directives := ev["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)
			for _, d := range directives {
				d := d.(map[string]any)
				metrics := d["Metrics"].([]any)
				if len(metrics) > 100 {
					t.Errorf("%d metrics in one directive, EMF allows 100", len(metrics))
				}
				for _, m := range metrics {
					name := m.(map[string]any)["Name"].(string)
					if _, ok := ev[name].(float64); !ok {
						t.Errorf("metric %s has no numeric value at the root: %#v", name, ev[name])
					}
				}
				for _, set := range d["Dimensions"].([]any) {
					for _, k := range set.([]any) {
						if _, ok := ev[k.(string)].(string); !ok {
							t.Errorf("dimension %s has no string value at the root: %#v", k, ev[k.(string)])
						}
						if k == "TenantId" {
							t.Errorf("TenantId is a dimension: metric cost would grow with tenants")
						}
					}
				}
			}

			want := map[string]any{
				"Service": "orders", "Tier": wantTier[i], "Meter": rec.Meter, "Usage": rec.Value,
				"TenantId": rec.TenantID, "RecordId": rec.ID, "Unattributed": rec.Unattributed,
				"WindowStart": float64(rec.WindowStart.UnixMilli()), "WindowEnd": float64(rec.WindowEnd.UnixMilli()),
			}
			for k, v := range rec.Dimensions {
				if _, envelope := want[k]; !envelope {
					want[k] = v
				}
			}
			root := make(map[string]any)
			for k, v := range ev {
				if k != "_aws" {
					root[k] = v
				}
			}
			if diff := cmp.Diff(want, root); diff != "" {
				t.Errorf("root members (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewEMFNeedsANamespace(t *testing.T) {
	if _, err := meter.NewEMF(&bytes.Buffer{}, ""); err == nil {
		t.Error("NewEMF with no namespace succeeded")
	}
}
