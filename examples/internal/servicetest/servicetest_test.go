package servicetest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo is a service in the shape of the examples' run: it logs a JSON
// line per request on stdout and answers /problem with a problem document.
func echo(ctx context.Context, getenv func(string) string, stdout, _ io.Writer, ready func(string)) error {
	ln, err := net.Listen("tcp", getenv("ADDR"))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(stdout, "{\"msg\":\"request\",\"request_id\":%q,\"auth\":%q}\n", r.Header.Get("X-Request-Id"), r.Header.Get("Authorization"))
		if r.URL.Path == "/problem" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, `{"type":"about:blank","title":"Teapot","status":418,"detail":"short and stout"}`)
			return
		}
		io.WriteString(w, getenv("GREETING"))
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ready(ln.Addr().String())
	<-ctx.Done()
	fmt.Fprintln(stdout, `{"msg":"stopped"}`)
	if err := srv.Shutdown(context.Background()); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func TestStartDoStop(t *testing.T) {
	svc := servicetest.Start(t, map[string]string{"ADDR": "127.0.0.1:0", "GREETING": "hello"}, echo)

	r := svc.Do(t, http.MethodGet, "/", "tok", "", http.Header{"X-Request-Id": {"r1"}})
	if r.Status != http.StatusOK || string(r.Body) != "hello" {
		t.Errorf("GET /: %d %q, want 200 hello", r.Status, r.Body)
	}
	p := servicetest.WantProblem(t, svc.Do(t, http.MethodGet, "/problem", "", "", nil), http.StatusTeapot)
	if p.Detail != "short and stout" {
		t.Errorf("problem %+v", p)
	}
	svc.Stop(t)

	lines := svc.Lines(t)
	if len(lines) != 3 || lines[2].Str("msg") != "stopped" {
		t.Fatalf("lines %v, want two requests and the stop line", lines)
	}
	got := servicetest.OneLine(t, servicetest.RequestLines(lines), servicetest.LogLine{"request_id": "r1"})
	servicetest.WantFields(t, "request line", got, servicetest.LogLine{"msg": "request", "auth": "Bearer tok"})
	select {
	case <-svc.Done():
	default:
		t.Error("Done is open after Stop")
	}
}

// StartStalled's stdout lets nothing through until Resume, and then what
// the service wrote.
func TestStartStalled(t *testing.T) {
	svc, stalled := servicetest.StartStalled(t, map[string]string{"ADDR": "127.0.0.1:0"}, echo)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		// echo writes to stdout in its handler: this request waits.
		svc.Do(t, http.MethodGet, "/", "", "", http.Header{"X-Request-Id": {"r1"}})
	}()
	if out := svc.Stdout.String(); out != "" {
		t.Fatalf("Stdout received %q before Resume", out)
	}
	stalled.Resume()
	<-wrote
	svc.Stop(t)
	servicetest.OneLine(t, svc.Lines(t), servicetest.LogLine{"request_id": "r1"})
}
