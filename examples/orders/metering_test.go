package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/meter"
)

// readUsage reads the records of a METER_FILE.
func readUsage(t *testing.T, path string) []meter.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []meter.Record
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r meter.Record
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("METER_FILE line %d is not a record: %v\n%s", i+1, err, line)
		}
		out = append(out, r)
	}
	return out
}

// sumUsage adds up the values of meter per tenant ("" for unattributed
// usage), for one route, or every route when route is "".
func sumUsage(records []meter.Record, name, route string) map[string]float64 {
	out := map[string]float64{}
	for _, r := range records {
		if r.Meter == name && (route == "" || r.Dimensions["route"] == route) {
			out[r.TenantID] += r.Value
		}
	}
	return out
}

// TestUsageRecordsInMeterFile places orders for two tenants, sends a
// request without a token, then stops the service as SIGTERM does: the
// usage of every request is in METER_FILE, exactly, and nothing is left in
// the spool.
func TestUsageRecordsInMeterFile(t *testing.T) {
	meterFile := filepath.Join(t.TempDir(), "usage.jsonl")
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"METER_FILE": meterFile})
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	eve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))

	const nAcme, nGlobex = 7, 3
	for i := range nAcme {
		svc.create(t, alice, "anvil", i+1)
	}
	for range nGlobex {
		svc.create(t, eve, "hammock", 1)
	}
	svc.list(t, "/orders", alice)
	svc.do(t, "GET", "/orders", "", "")  // 401: denied, no tenant
	svc.do(t, "GET", "/healthz", "", "") // not metered
	svc.Stop(t)

	records := readUsage(t, meterFile)
	for _, c := range []struct {
		meter, route string
		want         map[string]float64
	}{
		{meterOrdersCreated, "", map[string]float64{"acme": nAcme, "globex": nGlobex}},
		{meter.MeterRequests, "POST /orders", map[string]float64{"acme": nAcme, "globex": nGlobex}},
		{meter.MeterRequests, "GET /orders", map[string]float64{"acme": 1}},
		{meter.MeterRequests, "", map[string]float64{"acme": nAcme + 1, "globex": nGlobex}},
		{meter.MeterDenied, "", map[string]float64{"": 1}},
	} {
		if diff := cmp.Diff(c.want, sumUsage(records, c.meter, c.route)); diff != "" {
			t.Errorf("%s on route %q per tenant (-want +got):\n%s", c.meter, c.route, diff)
		}
	}
	ids := map[string]bool{}
	for _, r := range records {
		if r.Service != "orders" || r.ID == "" || ids[r.ID] {
			t.Errorf("record %+v: want service orders and an ID of its own", r)
		}
		ids[r.ID] = true
		if r.Dimensions["route"] == "GET /healthz" {
			t.Errorf("/healthz is metered: %+v", r)
		}
		if r.Meter == meter.MeterDenied && r.Dimensions["reason"] != "authz:no_token" {
			t.Errorf("denied record %+v: want reason authz:no_token", r)
		}
		if r.TenantID == "globex" && r.Tier != "basic" {
			t.Errorf("globex's record %+v: want tier basic", r)
		}
	}
	if _, err := os.Stat(meterFile + spoolSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a spool file is left after a clean shutdown: %v", err)
	}
	// Not a line of EMF on stdout: the records went to the file.
	if strings.Contains(svc.Stdout.String(), `"_aws"`) {
		t.Errorf("EMF lines on stdout with METER_FILE set")
	}
}

// TestUsageRecordsAsEMF runs without METER_FILE: the records come out on
// stdout as CloudWatch EMF events, between the log lines, each a whole
// JSON line.
func TestUsageRecordsAsEMF(t *testing.T) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, nil)
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	for range 2 {
		svc.create(t, alice, "anvil", 1)
	}
	svc.Stop(t)

	created := 0.0
	events := 0
	for _, line := range svc.Lines(t) {
		aws, ok := line["_aws"].(map[string]any)
		if !ok {
			continue
		}
		events++
		metrics, _ := aws["CloudWatchMetrics"].([]any)
		if len(metrics) != 1 {
			t.Fatalf("EMF event without one CloudWatchMetrics: %v", line)
		}
		if ns := metrics[0].(map[string]any)["Namespace"]; ns != emfNamespace {
			t.Errorf("namespace %v, want %s", ns, emfNamespace)
		}
		if line["Service"] != "orders" {
			t.Errorf("EMF event of service %v", line["Service"])
		}
		if line["Meter"] == meterOrdersCreated {
			if line["TenantId"] != "acme" || line["Tier"] != "premium" {
				t.Errorf("orders.created event %v: want TenantId acme, Tier premium", line)
			}
			created += line["Usage"].(float64)
		}
	}
	if events == 0 {
		t.Fatalf("no EMF event on stdout:\n%s", svc.Stdout)
	}
	if created != 2 {
		t.Errorf("orders.created events add up to %v, want 2", created)
	}
}

// TestStdoutKeepsLinesWhole writes batches of EMF events far larger than
// 4 KiB on stdout while log lines are written from other goroutines
// through a log stream whose 4 KiB buffer wraps many times (its writers
// wait for room rather than drop): every line of stdout is one whole JSON
// object, and none is lost.
func TestStdoutKeepsLinesWhole(t *testing.T) {
	var buf syncBuffer
	out, err := kit.NewStdout(&buf, logging.WithBufferSize(4<<10), logging.WithMaxWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	emf, err := meter.NewEMF(out, emfNamespace)
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(out.Log, slog.LevelInfo)
	records := make([]meter.Record, 300)
	for i := range records {
		records[i] = meter.Record{
			ID: fmt.Sprintf("id-%d", i), TenantID: "acme", Meter: "orders.created", Value: 1, Unit: meter.UnitCount,
			WindowStart: time.Unix(0, 0), WindowEnd: time.Unix(60, 0), Service: "orders",
		}
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				log.Info("log line", "goroutine", g, "i", i, "pad", strings.Repeat("x", 100))
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			if err := emf.Write(context.Background(), records); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := out.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := out.Log.Dropped(); n != 0 {
		t.Fatalf("%d log lines dropped", n)
	}

	lines, events := 0, 0
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", lines, err, sc.Bytes())
		}
		if _, ok := v["_aws"]; ok {
			events++
		}
	}
	if want := 4*200 + 3*len(records); lines != want || events != 3*len(records) {
		t.Errorf("%d lines, %d EMF events; want %d lines, %d events", lines, events, want, 3*len(records))
	}
}

// TestMeterSpoolIsLoadedAtStart leaves a spool file beside METER_FILE, as a
// shutdown that could not write the file would: the next start delivers its
// records to the file and removes it.
func TestMeterSpoolIsLoadedAtStart(t *testing.T) {
	dir := t.TempDir()
	meterFile := filepath.Join(dir, "usage.jsonl")
	spooled := meter.Record{
		ID: "0123456789abcdef0123456789abcdef", TenantID: "acme", Tier: "premium", Meter: meterOrdersCreated, Value: 4,
		Unit: meter.UnitCount, WindowStart: time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC),
		WindowEnd: time.Date(2030, 1, 2, 3, 5, 0, 0, time.UTC), Service: "orders",
	}
	line, _ := json.Marshal(spooled)
	if err := os.WriteFile(meterFile+spoolSuffix, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"METER_FILE": meterFile})
	svc.create(t, iss.MustMint("acme", "premium", authztest.WithSubject("alice")), "anvil", 1)
	svc.Stop(t)

	records := readUsage(t, meterFile)
	if diff := cmp.Diff(map[string]float64{"acme": 5}, sumUsage(records, meterOrdersCreated, "")); diff != "" {
		t.Errorf("orders.created (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(meterFile + spoolSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the spool file is still there: %v", err)
	}
}
