package meter_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

func TestNewEMFNamespace(t *testing.T) {
	tests := []struct {
		namespace string
		ok        bool
	}{
		{"Tenancy/Orders", true},
		{"a.b-c_d/e#f:g h", true},
		{strings.Repeat("n", 255), true},
		{"", false},
		{"   ", false},
		{strings.Repeat("n", 256), false},
		{"AWS/EC2", false},
		{"Tenancy\nOrders", false},
		{"Tenancy/Commandes-Été", false},
		{`Tenancy"Orders`, false},
	}
	for _, tt := range tests {
		_, err := meter.NewEMF(&bytes.Buffer{}, tt.namespace)
		switch {
		case tt.ok && err != nil:
			t.Errorf("NewEMF(%q) = %v", tt.namespace, err)
		case !tt.ok && err == nil:
			t.Errorf("NewEMF(%q) succeeded, want an error", tt.namespace)
		case !tt.ok && !strings.HasPrefix(err.Error(), "meter: NewEMF"):
			t.Errorf("NewEMF(%q) = %v, want a meter: NewEMF error", tt.namespace, err)
		}
	}
}

// Hostile strings in a record, where they may come from a client (a route
// pattern, a tenant ID) or a spool file, can neither break the JSON of an
// event nor take it past CloudWatch's limits.
func TestEMFKeepsToCloudWatchLimits(t *testing.T) {
	const maxValue = 1024
	huge := strings.Repeat("<é\u2028\"\n", 200_000) // 1.4 MB, escaped by JSON to 6 bytes a character
	hostile := []string{
		"", " ", "\t\n", "\u00a0", "line\nbreak", "nul\x00byte", `"}` + "\n" + `{"_aws":{}}`,
		"caf\u00e9", "\u2028\u2029", "invalid \xff\xfe utf-8", "\x1b[31mred", huge,
		strings.Repeat("a", maxValue), strings.Repeat("a", maxValue+1),
	}
	var records []meter.Record
	for i, h := range hostile {
		records = append(records, meter.Record{
			ID: h, TenantID: h, Tier: h, Meter: h, Service: h, Value: float64(i), Unit: h,
			WindowStart: start, WindowEnd: start.Add(time.Minute),
			// A meter's most dimensions, each hostile, one shadowing the
			// envelope.
			Dimensions: map[string]string{"route": h, "reason": h, "_aws": h, "Usage": h},
		})
	}
	var buf bytes.Buffer
	s, err := meter.NewEMF(&buf, "Tenancy/Orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), records); err != nil {
		t.Fatal(err)
	}
	lines := slices.Collect(bytes.Lines(buf.Bytes()))
	if len(lines) != len(records) {
		t.Fatalf("%d lines for %d records", len(lines), len(records))
	}
	for i, line := range lines {
		t.Run(fmt.Sprintf("%.20q", hostile[i]), func(t *testing.T) {
			if len(line) > 256<<10 {
				t.Errorf("event of %d bytes, CloudWatch Logs takes 256 KB", len(line))
			}
			var ev map[string]any
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if ev["Usage"] != float64(i) {
				t.Errorf("Usage = %v, want %d", ev["Usage"], i)
			}
			aws, ok := ev["_aws"].(map[string]any)
			if !ok {
				t.Fatalf("_aws = %#v", ev["_aws"])
			}
			directives := aws["CloudWatchMetrics"].([]any)
			if len(directives) != 1 {
				t.Fatalf("%d directives, want 1", len(directives))
			}
			d := directives[0].(map[string]any)
			if n := len(d["Metrics"].([]any)); n < 1 || n > 100 {
				t.Errorf("%d metrics, EMF takes 1 to 100", n)
			}
			for _, set := range d["Dimensions"].([]any) {
				if n := len(set.([]any)); n > 30 {
					t.Errorf("a dimension set of %d, EMF takes 30", n)
				}
				for _, k := range set.([]any) {
					v, _ := ev[k.(string)].(string)
					if !validDimensionValue(v) {
						t.Errorf("dimension %s = %.40q: not 1 to %d printable ASCII characters, not all blank", k, v, maxValue)
					}
				}
			}
			for k, v := range ev {
				if s, ok := v.(string); ok && utf8.RuneCountInString(s) > maxValue {
					t.Errorf("%s is %d characters, more than %d", k, utf8.RuneCountInString(s), maxValue)
				}
			}
		})
	}
}

// validDimensionValue reports whether CloudWatch takes v as a dimension
// value: 1 to 1024 ASCII characters, none a control character, not all
// white space.
func validDimensionValue(v string) bool {
	if len(v) == 0 || len(v) > 1024 || strings.TrimSpace(v) == "" {
		return false
	}
	for _, c := range []byte(v) {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

var emfSink = lineSink{
	onWriter: func(t *testing.T, w io.Writer) meter.Sink {
		s, err := meter.NewEMF(w, "Tenancy/Test")
		if err != nil {
			t.Fatal(err)
		}
		return s
	},
	onFile: func(t *testing.T, path string) (meter.Sink, func() error) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		s, err := meter.NewEMF(f, "Tenancy/Test")
		if err != nil {
			t.Fatal(err)
		}
		return s, f.Close
	},
	decode: func(line []byte) (meter.Record, error) {
		var ev struct {
			RecordID     string `json:"RecordId"`
			TenantID     string `json:"TenantId"`
			Unattributed bool
			Meter        string
			Usage        float64
			Route        *string `json:"route"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			return meter.Record{}, err
		}
		rec := meter.Record{ID: ev.RecordID, TenantID: ev.TenantID, Unattributed: ev.Unattributed, Meter: ev.Meter, Value: ev.Usage}
		if ev.Route != nil {
			rec.Dimensions = map[string]string{"route": *ev.Route}
		}
		return rec, nil
	},
}

// EMF on stdout, piped to a log driver, or in a file: whole lines only,
// however full the disk gets.
func TestEMFOnAFullDisk(t *testing.T) {
	testFullDisk(t, emfSink)
}
