package logging_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/logging"
)

// newAuditor returns an auditor writing JSON, with times, to the returned
// buffer, at the fixed testTime.
func newAuditor(wrap func(slog.Handler) slog.Handler) (*logging.Auditor, *syncBuffer) {
	buf := new(syncBuffer)
	var h slog.Handler = slog.NewJSONHandler(buf, nil)
	if wrap != nil {
		h = wrap(h)
	}
	a := logging.NewAuditor(h)
	logging.SetAuditClock(a, func() time.Time { return testTime })
	return a, buf
}

// auditFields is an audit record of the test's action.
func auditFields(outcome string) map[string]any {
	return map[string]any{
		"time": testTime.Format(time.RFC3339Nano), "level": "INFO", "msg": "audit",
		"log_type": "audit", "action": "orders.delete", "resource": "orders/42", "outcome": outcome,
	}
}

func TestAuditFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(slog.Handler) slog.Handler
	}{
		{"plain handler", nil},
		{"tenancy handler", func(h slog.Handler) slog.Handler { return logging.NewHandler(h) }},
		{"tenancy handler at WARN", func(h slog.Handler) slog.Handler {
			return logging.NewHandler(h, logging.WithLevels(logging.NewLevels(slog.LevelWarn)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, buf := newAuditor(tc.wrap)
			a.Audit(fullContext(t), "orders.delete", "orders/42", logging.OutcomeSuccess, slog.String("reason", "customer request"))
			a.Audit(context.Background(), "orders.delete", "orders/42", logging.OutcomeFailure)
			//lint:ignore SA1012 a nil context is tolerated, as by slog, and this proves it
			a.Audit(nil, "orders.delete", "orders/42", logging.OutcomeDenied)

			out := buf.String()
			want := []map[string]any{
				with(auditFields("success"), "reason", "customer request"),
				auditFields("failure"),
				auditFields("denied"),
			}
			for k, v := range fullFields {
				want[0][k] = v
			}
			if diff := cmp.Diff(want, decodeLines(t, out)); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			// json.Unmarshal keeps the last of duplicate keys; count them.
			for line := range strings.Lines(out) {
				seen := map[string]bool{}
				for _, k := range topLevelKeys(t, line) {
					if seen[k] {
						t.Errorf("key %q twice in %s", k, line)
					}
					seen[k] = true
				}
			}
		})
	}
}

func TestAuditRedacts(t *testing.T) {
	iss := authztest.Start(t)
	tok := iss.MustMint("acme", "premium")
	a, buf := newAuditor(nil)
	a.Audit(fullContext(t), "login", "session", logging.OutcomeFailure,
		slog.String("password", "hunter2"),
		slog.String("presented", "Bearer "+tok),
		slog.Group("client", slog.String("Client_Secret", "cs-1"), slog.String("name", "cli")))
	out := buf.String()
	if leaked := containsAny(out, "hunter2", "cs-1", tok, tok[strings.LastIndexByte(tok, '.')+1:]); leaked != nil {
		t.Errorf("audit record contains %d secrets:\n%s", len(leaked), out)
	}
	rec := decodeOne(t, out)
	want := map[string]any{"name": "cli", "Client_Secret": logging.Redacted}
	if diff := cmp.Diff(want, rec["client"]); diff != "" {
		t.Errorf("client group (-want +got):\n%s", diff)
	}
	if rec["password"] != logging.Redacted || rec["presented"] != logging.Redacted {
		t.Errorf("password, presented = %v, %v; want both redacted", rec["password"], rec["presented"])
	}
}

func TestNewAuditorNilPanics(t *testing.T) {
	defer func() {
		if s, _ := recover().(string); !strings.HasPrefix(s, "logging: ") {
			t.Errorf("panic = %q, want the logging: prefix", s)
		}
	}()
	logging.NewAuditor(nil)
}

// TestDefaultAuditor changes process-wide state: not parallel.
func TestDefaultAuditor(t *testing.T) {
	t.Cleanup(logging.ResetDefaultAuditor)
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	ctx := fullContext(t)

	t.Run("unset: slog.Default", func(t *testing.T) {
		logging.ResetDefaultAuditor()
		buf := new(syncBuffer)
		slog.SetDefault(slog.New(jsonHandler(buf)))
		if logging.DefaultAuditor() == nil {
			t.Fatal("DefaultAuditor() = nil before any SetDefaultAuditor")
		}
		logging.Audit(ctx, "orders.read", "orders", logging.OutcomeSuccess)
		rec := decodeOne(t, buf.String())
		if rec["log_type"] != "audit" || rec["tenant_id"] != "acme" || rec["request_id"] != "req-1" {
			t.Errorf("record through slog.Default = %v", rec)
		}
	})

	t.Run("set", func(t *testing.T) {
		a, buf := newAuditor(nil)
		logging.SetDefaultAuditor(a)
		if logging.DefaultAuditor() != a {
			t.Error("DefaultAuditor() is not the auditor just set")
		}
		logging.Audit(ctx, "orders.delete", "orders/42", logging.OutcomeDenied)
		want := with(auditFields("denied"))
		for k, v := range fullFields {
			want[k] = v
		}
		if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
			t.Errorf("record (-want +got):\n%s", diff)
		}
	})

	t.Run("nil turns auditing off", func(t *testing.T) {
		buf := new(syncBuffer)
		slog.SetDefault(slog.New(jsonHandler(buf)))
		logging.SetDefaultAuditor(nil)
		if a := logging.DefaultAuditor(); a != nil {
			t.Errorf("DefaultAuditor() = %v after SetDefaultAuditor(nil), want nil", a)
		}
		logging.Audit(ctx, "orders.delete", "orders/42", logging.OutcomeDenied)
		if out := buf.String(); out != "" {
			t.Errorf("audit written while off: %s", out)
		}
	})
}
