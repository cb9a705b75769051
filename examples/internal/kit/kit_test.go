package kit_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEnvNamesEveryProblem(t *testing.T) {
	vars := map[string]string{"ADDR": " 127.0.0.1:80", "AUTH_TIER_CLAIM": "plan"}
	env := kit.NewEnv(func(k string) string { return vars[k] })
	if got := env.Get("ADDR", "x"); got != "127.0.0.1:80" {
		t.Errorf("Get trimmed to %q", got)
	}
	a := env.Auth()
	if a.Mapping.Tier != "plan" || a.Mapping.Tenant != authz.Cognito().Tenant || a.Issuer != "" {
		t.Errorf("Auth = %+v", a)
	}
	env.Fail("AUTH_AUDIENCE is required")
	err := env.Err()
	if err == nil || !strings.Contains(err.Error(), "ADDR has leading or trailing white space") || !strings.Contains(err.Error(), "AUTH_AUDIENCE") {
		t.Fatalf("Err = %v, want both problems", err)
	}
	if kit.CheckHostPort("localhost") == nil || kit.CheckHostPort("127.0.0.1:0") != nil {
		t.Error("CheckHostPort")
	}
	if kit.CheckURL("ftp://x") == nil || kit.CheckURL("https://x") != nil {
		t.Error("CheckURL")
	}
}

// Serve drains a request in flight when the context ends, and returns nil.
func TestServeDrains(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	srv := kit.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	}), slog.DiscardHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		served <- kit.Serve(ctx, srv, ln, slog.New(slog.DiscardHandler), "test", func(a string) { addr <- a })
	}()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + <-addr)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	close(release)
	if body := <-got; body != "done" {
		t.Fatalf("the request in flight got %q", body)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil after a clean drain", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// WithHealthz answers GET /healthz itself, with a JSON body no cache may
// keep, and hands every other request to the stack.
func TestWithHealthz(t *testing.T) {
	stack := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kit.WriteJSON(w, http.StatusTeapot, map[string]string{"path": r.URL.Path})
	})
	h := kit.WithHealthz(stack)
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/healthz", http.StatusOK, `{"status":"ok"}` + "\n"},
		{"GET", "/orders", http.StatusTeapot, `{"path":"/orders"}` + "\n"},
		{"POST", "/healthz", http.StatusTeapot, `{"path":"/healthz"}` + "\n"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || rec.Body.String() != c.body {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, rec.Code, rec.Body, c.status, c.body)
		}
		for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s %s: %s %q, want %q", c.method, c.path, k, got, v)
			}
		}
	}
}
