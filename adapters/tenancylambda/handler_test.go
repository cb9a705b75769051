package tenancylambda_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

func TestNewRefusesMistakes(t *testing.T) {
	if _, err := tenancylambda.New(nil); err == nil || !strings.Contains(err.Error(), "handler") {
		t.Errorf("New(nil) = %v, want an error naming the handler", err)
	}
	if _, err := tenancylambda.New(http.NotFoundHandler(), tenancylambda.WithRecorder(nil)); err == nil || !strings.Contains(err.Error(), "WithRecorder") {
		t.Errorf("New with WithRecorder(nil) = %v, want an error naming WithRecorder", err)
	}
	if _, err := tenancylambda.New(http.NotFoundHandler(), nil, tenancylambda.WithRequestIDHeader("")); err != nil {
		t.Errorf("New with nil and zero options = %v, want the defaults", err)
	}
}

// usage is a meter sink that keeps what it was given, and fails while
// fail returns an error.
type usage struct {
	mu      sync.Mutex
	records []meter.Record
	fail    func(ctx context.Context) error
}

func (u *usage) Write(ctx context.Context, recs []meter.Record) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fail != nil {
		if err := u.fail(ctx); err != nil {
			return err
		}
	}
	u.records = append(u.records, recs...)
	return nil
}

// requests sums the requests meter of tenantID delivered so far.
func (u *usage) requests(tenantID string) float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var n float64
	for _, r := range u.records {
		if r.Meter == meter.MeterRequests && r.TenantID == tenantID {
			n += r.Value
		}
	}
	return n
}

// metered returns a Handler of a stack that meters every request for the
// tenant of its authorizer, delivering after each invocation, and its
// sink.
func metered(t *testing.T, next http.Handler) (*tenancylambda.Handler, *usage) {
	t.Helper()
	sink := &usage{}
	rec, err := meter.New("notes", sink, meter.WithoutLoop(), meter.WithMeters(meter.HTTPMeters()...), meter.WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sink.mu.Lock()
		sink.fail = nil
		sink.mu.Unlock()
		rec.Shutdown(context.Background())
	})
	stack, err := tenancy.New(tenancy.WithMeter(rec), tenancy.WithResolver(tenancylambda.Authorizer(authz.Cognito(), nil, tenant.Tier{})))
	if err != nil {
		t.Fatal(err)
	}
	return newHandler(t, stack.Wrap(next), tenancylambda.WithRecorder(rec)), sink
}

// TestWithRecorder: each invocation's usage is delivered before Invoke
// returns, the open window's included, without Shutdown.
func TestWithRecorder(t *testing.T) {
	h, sink := metered(t, http.NotFoundHandler())
	ev := loadV2(t, "http-jwt.json")
	for i := 1; i <= 3; i++ {
		invokeV2(t, context.Background(), h, ev)
		if got := sink.requests("acme"); got != float64(i) {
			t.Fatalf("after invocation %d: %v requests of acme delivered, want %d", i, got, i)
		}
	}
}

// TestWithRecorderPanic: a handler's panic goes on to the Lambda runtime,
// after the usage was delivered.
func TestWithRecorderPanic(t *testing.T) {
	h, sink := metered(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("panic %v, want the handler's", p)
			}
		}()
		payload := `{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"GET"},"authorizer":{"jwt":{"claims":{"custom:tenantId":"acme","custom:tenantTier":"basic"}}}}}`
		h.Invoke(context.Background(), []byte(payload))
	}()
	if got := sink.requests("acme"); got != 1 {
		t.Errorf("%v requests of acme delivered, want 1", got)
	}
}

// TestFlushFailure: usage that cannot be delivered does not fail the
// invocation; each kind of failure is logged once, at error level, through
// slog.Default; and the records are delivered once the sink is back.
func TestFlushFailure(t *testing.T) {
	logs := &syncbuf.Buffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	h, sink := metered(t, http.NotFoundHandler())
	sink.fail = func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("sink down")
	}
	ev := loadV2(t, "http-jwt.json")
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, ctx := range []context.Context{context.Background(), context.Background(), expired, expired, context.Background()} {
		if res := invokeV2(t, ctx, h, ev); res.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want the handler's 404", res.StatusCode)
		}
	}
	lines := accessLines(t, logs.String())
	var kinds []string
	for _, l := range lines {
		if l["level"] != "ERROR" || !strings.HasPrefix(l["msg"].(string), "tenancylambda: usage not delivered") {
			t.Errorf("log line %v, want an error about the usage", l)
		}
		kinds = append(kinds, l["kind"].(string))
	}
	if want := []string{"*errors.errorString", "deadline"}; strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("logged kinds %q, want %q", kinds, want)
	}
	if got := sink.requests("acme"); got != 0 {
		t.Fatalf("%v requests delivered by a failing sink", got)
	}
	sink.mu.Lock()
	sink.fail = nil
	sink.mu.Unlock()
	invokeV2(t, context.Background(), h, ev)
	if got := sink.requests("acme"); got != 6 {
		t.Errorf("%v requests of acme delivered once the sink is back, want 6", got)
	}
}

// TestAbortHandler: a handler that aborts its response with
// http.ErrAbortHandler fails the invocation, for API Gateway to answer
// 502, rather than the Lambda runtime reporting a panic.
func TestAbortHandler(t *testing.T) {
	h := newHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		panic(http.ErrAbortHandler)
	}))
	out, err := h.Invoke(context.Background(), []byte(`{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"GET"}}}`))
	if err == nil || out != nil || !strings.Contains(err.Error(), "aborted") {
		t.Errorf("Invoke = %s, %v; want an error saying the handler aborted", out, err)
	}
}
