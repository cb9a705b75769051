package logging_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// stampFixture is a producer's Signer, a forger's with another key under
// the same key ID, and the consumer's Verifier of the producer's stamps.
type stampFixture struct {
	signer, forger *stamp.Signer
	verifier       *stamp.Verifier
}

func newStampFixture(t *testing.T) *stampFixture {
	t.Helper()
	var f stampFixture
	for _, s := range []**stamp.Signer{&f.signer, &f.forger} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if *s, err = stamp.NewSigner("https://orders.example.com", key, "k1"); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	f.verifier, err = stamp.NewVerifier(context.Background(), "https://orders.example.com", stamp.WithJWKS(f.signer.JWKS()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.verifier.Close() })
	return &f
}

// stamped returns a message of "orders" with body and the stamp of s for
// tenant acme (of a body stampedBody, "" for body), carrying the test's
// trace.
func (f *stampFixture) stamped(t *testing.T, s *stamp.Signer, id, body, stampedBody string) *message.Message {
	t.Helper()
	if stampedBody == "" {
		stampedBody = body
	}
	acme := tenant.NewContext(context.Background(), mustTenant(t, "acme", "premium", "user-1"))
	attrs, err := s.Stamp(acme, []byte(stampedBody))
	if err != nil {
		t.Fatal(err)
	}
	attrs["traceparent"] = "00-" + testTraceID + "-" + testSpanID + "-01"
	return &message.Message{ID: id, Source: "orders", Body: []byte(body), Attributes: attrs, Deliveries: 3}
}

// TestMessageLogAuditsRefusals: a message a trust mode refuses is one
// audit event (action consume on its source, denied, who refused it and
// why, the message ID and trace, the tenant it claimed, never the stamp);
// an accepted message, a deferral and the handler's own rejection are
// none. Audit events go to the auditor named, else to the message log's
// logger, whatever the level of its lines.
func TestMessageLogAuditsRefusals(t *testing.T) {
	f := newStampFixture(t)
	limits := map[string]throttle.Limits{}
	for _, name := range tenant.DefaultTiers.Names() {
		limits[name] = throttle.Limits{Rate: 0.001, Burst: 1}
	}
	audit := func(reason, claimed string) map[string]any {
		m := map[string]any{
			"level": "INFO", "msg": "audit", "log_type": "audit", "action": "consume", "resource": "orders", "outcome": "denied",
			"rejected_by": "stamp", "reject_reason": reason, "deliveries": 3.0, "request_id": "7-0", "trace_id": testTraceID,
		}
		if claimed != "" {
			m["claimed_tenant_id"] = claimed
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		msg     func(t *testing.T) *message.Message
		handler error
		want    map[string]any // nil: no audit event
	}{
		{"forged stamp", func(t *testing.T) *message.Message { return f.stamped(t, f.forger, "7-0", "a", "") }, nil, audit("signature", "acme")},
		{"tampered body", func(t *testing.T) *message.Message { return f.stamped(t, f.signer, "7-0", "b", "a") }, nil, audit("body_digest", "acme")},
		{"no stamp", func(t *testing.T) *message.Message {
			m := f.stamped(t, f.signer, "7-0", "a", "")
			delete(m.Attributes, stamp.Attribute)
			return m
		}, nil, audit("missing", "")},
		{"accepted", func(t *testing.T) *message.Message { return f.stamped(t, f.signer, "8-0", "a", "") }, nil, nil},
		{"deferred by the throttle", func(t *testing.T) *message.Message { return f.stamped(t, f.signer, "9-0", "a", "") }, nil, nil},
		{"rejected by the handler", func(t *testing.T) *message.Message { return f.stamped(t, f.signer, "10-0", "a", "") }, message.Reject("unreadable"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limiter, err := throttle.New(tenant.DefaultTiers, limits, throttle.WithClock(func() time.Time { return testTime }))
			if err != nil {
				t.Fatal(err)
			}
			lines, audits := new(syncBuffer), new(syncBuffer)
			mw := logging.MessageLog(slog.New(logging.NewHandler(jsonHandler(lines))), logging.WithAuditor(logging.NewAuditor(logging.NewHandler(jsonHandler(audits)))))
			h := mw(stamp.Trusted(f.verifier)(limiter.MessageMiddleware()(message.HandlerFunc(func(context.Context, *message.Message) error { return tc.handler }))))
			m := tc.msg(t)
			if tc.name == "deferred by the throttle" { // spend acme's burst first
				if err := h.HandleMessage(context.Background(), f.stamped(t, f.signer, "1-0", "a", "")); err != nil {
					t.Fatal(err)
				}
			}
			err = h.HandleMessage(context.Background(), m)
			if o, _, _ := message.OutcomeOf(err); (o == message.Rejected) != (tc.want != nil || tc.handler != nil) {
				t.Fatalf("outcome %s (%v)", o, err)
			}
			if tc.name == "deferred by the throttle" {
				if o, _, _ := message.OutcomeOf(err); o != message.Deferred {
					t.Fatalf("outcome %s, want deferred", o)
				}
			}
			got := decodeLines(t, audits.String())
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("audit events %v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d audit events %v, want 1", len(got), got)
			}
			delete(got[0], "time")
			delete(got[0], "span_id") // the message's own
			if diff := cmp.Diff(tc.want, got[0]); diff != "" {
				t.Errorf("audit event (-want +got):\n%s", diff)
			}
			if s := m.Attributes[stamp.Attribute]; s != "" {
				for _, part := range strings.Split(s, ".") {
					if strings.Contains(audits.String(), part) || strings.Contains(lines.String(), part) {
						t.Errorf("a part of the stamp is in the logs: %s", part)
					}
				}
			}
			if strings.Contains(lines.String(), `"msg":"audit"`) {
				t.Errorf("an audit event went to the message log: %s", lines)
			}
		})
	}

	t.Run("default: the message log's logger, whatever its level", func(t *testing.T) {
		buf := new(syncBuffer)
		logger := slog.New(logging.NewHandler(jsonHandler(buf), logging.WithLevels(logging.NewLevels(slog.LevelError))))
		h := logging.MessageLog(logger)(stamp.Trusted(f.verifier)(message.HandlerFunc(func(context.Context, *message.Message) error { return nil })))
		h.HandleMessage(context.Background(), f.stamped(t, f.forger, "7-0", "a", ""))
		got := decodeLines(t, buf.String())
		if len(got) != 1 || got[0]["msg"] != "audit" || got[0]["reject_reason"] != "signature" {
			t.Errorf("lines %v, want one audit event of the refusal", got)
		}
	})
	t.Run("WithAuditor(nil) turns them off", func(t *testing.T) {
		buf := new(syncBuffer)
		h := logging.MessageLog(slog.New(jsonHandler(buf)), logging.WithAuditor(nil))(stamp.Trusted(f.verifier)(message.HandlerFunc(func(context.Context, *message.Message) error { return nil })))
		h.HandleMessage(context.Background(), f.stamped(t, f.forger, "7-0", "a", ""))
		if got := decodeLines(t, buf.String()); len(got) != 1 || got[0]["msg"] != "message" {
			t.Errorf("lines %v, want the message line alone", got)
		}
	})
}
