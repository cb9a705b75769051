package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutlog"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memoryExporter keeps the records it is given.
type memoryExporter struct {
	mu      sync.Mutex
	records []sdklog.Record
}

func (e *memoryExporter) Export(_ context.Context, records []sdklog.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range records {
		e.records = append(e.records, r.Clone())
	}
	return nil
}

func (e *memoryExporter) Shutdown(context.Context) error   { return nil }
func (e *memoryExporter) ForceFlush(context.Context) error { return nil }

// exported is what the test reads of a record.
type exported struct {
	Body  string
	Attrs map[string]string
}

func TestRunExportsTenantAttributes(t *testing.T) {
	exp := new(memoryExporter)
	if err := run(context.Background(), exp); err != nil {
		t.Fatal(err)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	if len(exp.records) != 2 {
		t.Fatalf("exported %d records, want the handler's line and the access line", len(exp.records))
	}

	var got []exported
	for _, r := range exp.records {
		e := exported{Body: r.Body().AsString(), Attrs: map[string]string{}}
		r.WalkAttributes(func(kv attribute.KeyValue) bool {
			e.Attrs[string(kv.Key)] = kv.Value.String()
			return true
		})
		got = append(got, e)

		// The bridge sets the record's trace context; no attribute
		// repeats it.
		if !r.TraceID().IsValid() || !r.SpanID().IsValid() {
			t.Errorf("record %q has no trace context", e.Body)
		}
		if _, dup := e.Attrs["trace_id"]; dup {
			t.Errorf("record %q repeats its trace ID as an attribute", e.Body)
		}
	}

	requestID := got[0].Attrs["request_id"]
	if requestID == "" || got[1].Attrs["request_id"] != requestID {
		t.Errorf("request_id %q and %q, want the same non-empty ID", requestID, got[1].Attrs["request_id"])
	}
	// Leave out the values that change from run to run.
	for _, e := range got {
		for _, k := range []string{"request_id", "duration_ms"} {
			delete(e.Attrs, k)
		}
	}
	want := []exported{
		{Body: "order created", Attrs: map[string]string{
			"order": "42", "tenant.id": "acme", "tenant.tier": "premium",
		}},
		{Body: "request", Attrs: map[string]string{
			"method": "POST", "route": "POST /orders", "status": "201", "bytes": "9", "remote_ip": "192.0.2.1",
			"tenant.id": "acme", "tenant.tier": "premium",
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exported records (-want +got):\n%s", diff)
	}
}

// TestRunStdout runs the program's exporter into a buffer.
func TestRunStdout(t *testing.T) {
	var buf bytes.Buffer
	exp, err := stdoutlog.New(stdoutlog.WithWriter(&buf))
	if err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), exp); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{`"Key":"tenant.id"`, `"Value":"acme"`, `"Value":"order created"`} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %s:\n%s", s, out)
		}
	}
}
