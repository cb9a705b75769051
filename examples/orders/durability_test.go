package main

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
)

// placeOrder sends one POST /orders to p and reports whether it was
// answered 201.
func placeOrder(t *testing.T, p *servicetest.Process, token string) bool {
	t.Helper()
	r := p.Do(t, "POST", "/orders", token, `{"item":"anvil","quantity":1}`, nil)
	return r.Status == http.StatusCreated
}

// checkIDsOnce fails the test if two records of path share an ID.
func checkIDsOnce(t *testing.T, path string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range readUsage(t, path) {
		if seen[r.ID] {
			t.Errorf("record ID %s delivered twice", r.ID)
		}
		seen[r.ID] = true
	}
}

// TestKill9LosesAtMostTheLastSecond places orders for a second and a half
// in a process of its own, kills it with SIGKILL, and starts it again with
// the same environment: METER_FILE then holds the orders.created usage of
// at least every order answered more than meterCrashBound before the kill,
// at most every order answered, and each record once. Without the
// checkpoint it holds none.
func TestKill9LosesAtMostTheLastSecond(t *testing.T) {
	meterFile := filepath.Join(t.TempDir(), "usage.jsonl")
	iss := startIssuer(t)
	env := servicetest.IssuerEnv(iss, map[string]string{"METER_FILE": meterFile})
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	p := servicetest.StartProcess(t, env)
	var answered []time.Time // when each 201 came back
	for start := time.Now(); time.Since(start) < meterCrashBound+meterCrashBound/2; {
		if placeOrder(t, p, alice) {
			answered = append(answered, time.Now())
		}
	}
	killed := time.Now()
	p.Signal(t, syscall.SIGKILL)
	if st := p.Wait(t, time.Minute); st.Success() {
		t.Fatalf("the service ended with %v after SIGKILL", st)
	}
	old := 0 // answered more than the bound before the kill
	for _, at := range answered {
		if at.Before(killed.Add(-meterCrashBound)) {
			old++
		}
	}
	if old == 0 {
		t.Fatalf("no order was answered more than %v before the kill (%d in all): the test proves nothing", meterCrashBound, len(answered))
	}

	servicetest.StartProcess(t, env).Stop(t)

	got := int(sumUsage(readUsage(t, meterFile), meterOrdersCreated, "")["acme"])
	if got < old || got > len(answered) {
		t.Errorf("orders.created after the restart = %d, want %d (answered over %v before the kill) to %d (answered)", got, old, meterCrashBound, len(answered))
	}
	t.Logf("%d orders answered, %d of them over %v before the kill; %d billed", len(answered), old, meterCrashBound, got)
	checkIDsOnce(t, meterFile)
}

// TestSecondSIGTERMSpoolsAtOnce stops a process of its own whose sink is
// down (METER_FILE is /dev/full: every write fails with ENOSPC) with
// SIGTERM, and sends a second SIGTERM once it delivers its usage: it ends
// at once, not by the signal and well before meterShutdownTimeout, with
// every order's usage in the spool in METER_STATE_DIR; a start with a
// working METER_FILE and the same METER_STATE_DIR delivers it, exactly.
func TestSecondSIGTERMSpoolsAtOnce(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system:", err)
	}
	stateDir := t.TempDir()
	meterFile := filepath.Join(t.TempDir(), "usage.jsonl")
	iss := startIssuer(t)
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	p := servicetest.StartProcess(t, servicetest.IssuerEnv(iss, map[string]string{
		"METER_FILE": "/dev/full", "METER_STATE_DIR": stateDir,
	}))
	const orders = 20
	for range orders {
		if !placeOrder(t, p, alice) {
			t.Fatal("POST /orders not answered 201")
		}
	}
	p.Signal(t, syscall.SIGTERM)
	p.Stdout.WaitFor(t, "orders service drained: delivering usage records")
	second := time.Now()
	p.Signal(t, syscall.SIGTERM)
	st := p.Wait(t, time.Minute)
	took := time.Since(second)
	if !st.Exited() {
		t.Fatalf("the second SIGTERM ended the service by the signal (%v): the usage was not saved by it", st)
	}
	if took >= meterShutdownTimeout-time.Second {
		t.Errorf("the service ended %v after the second SIGTERM; want at once, not after the sink's %v", took, meterShutdownTimeout)
	}
	spool := filepath.Join(stateDir, stateDirSpool)
	if _, err := os.Stat(spool); err != nil {
		t.Fatalf("no spool after the second SIGTERM: %v\nstdout:\n%s\nstderr:\n%s", err, p.Stdout, p.Stderr)
	}

	servicetest.StartProcess(t, servicetest.IssuerEnv(iss, map[string]string{
		"METER_FILE": meterFile, "METER_STATE_DIR": stateDir,
	})).Stop(t)
	if got := sumUsage(readUsage(t, meterFile), meterOrdersCreated, "")["acme"]; got != orders {
		t.Errorf("orders.created after the restart = %v, want %d", got, orders)
	}
	checkIDsOnce(t, meterFile)
	if _, err := os.Stat(spool); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the spool is still there after its delivery: %v", err)
	}
}
