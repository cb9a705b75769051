package main

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
)

// reloadTiers is a TIERS_FILE whose basic burst is burst, and whose
// budgets come back at one request per 1000 s, so bursts are exact.
func reloadTiers(burst string) string {
	return `{
	"basic":    {"rate": 0.001, "burst": ` + burst + `},
	"standard": {"rate": 0.001, "burst": 20},
	"premium":  {"rate": 0.001, "burst": 100},
	"platinum": {"rate": 0.001, "burst": 1000}
}`
}

// admitted sends n GET /orders with token to p and returns how many were
// answered 200; the others must be 429.
func admitted(t *testing.T, p *servicetest.Process, token string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		switch r := p.Do(t, "GET", "/orders", token, "", nil); r.Status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("GET /orders: status %d, body %s", r.Status, r.Body)
		}
	}
	return ok
}

// TestSIGHUPReloadsLimits runs orders as a process of its own with a
// TIERS_FILE giving basic tenants a burst of 3, changes the file to 6 and
// sends SIGHUP: a new basic tenant is admitted 6 of 8 requests instead of
// 3. Then it breaks the file and sends SIGHUP again: one error line, and
// the burst stays 6.
func TestSIGHUPReloadsLimits(t *testing.T) {
	tiersFile := filepath.Join(t.TempDir(), "tiers.json")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(tiersFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadTiers("3"))
	iss := startIssuer(t)
	p := servicetest.StartProcess(t, servicetest.IssuerEnv(iss, map[string]string{"TIERS_FILE": tiersFile}))
	basic := func(id string) string { return iss.MustMint(id, "basic", authztest.WithSubject("u")) }

	if got := admitted(t, p, basic("t1"), 8); got != 3 {
		t.Fatalf("before the reload: %d of 8 admitted, want 3", got)
	}

	write(reloadTiers("6"))
	p.Signal(t, syscall.SIGHUP)
	p.Stdout.WaitFor(t, `"msg":"limits reloaded"`)
	if got := admitted(t, p, basic("t2"), 8); got != 6 {
		t.Errorf("after the reload: %d of 8 admitted, want 6", got)
	}

	write(`{"basic": {"rate": 0.001, "brust": 1}}`)
	p.Signal(t, syscall.SIGHUP)
	p.Stdout.WaitFor(t, `"msg":"limits not reloaded: the limits in force stay"`)
	if got := admitted(t, p, basic("t3"), 8); got != 6 {
		t.Errorf("after a broken file: %d of 8 admitted, want 6 (the limits in force)", got)
	}
	p.Stop(t)
	if n := p.Stdout.Count(`"msg":"limits not reloaded`); n != 1 {
		t.Errorf("%d lines about the broken file, want 1", n)
	}
	if n := p.Stdout.Count(`"msg":"limits reloaded"`); n != 1 {
		t.Errorf("%d lines about a reload, want 1", n)
	}
}
