package tenancy_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// TestHostileMessages: through the whole stack, hostile attributes get a
// clear outcome and no log line leaks a stamp or names a tenant the stamp
// does not prove: acme's stamp with baggage claiming globex runs and logs
// as acme; a stamp of 1 MB is refused too_large; invalid UTF-8 in the
// trace context and baggage beside a good stamp runs as acme; a stamp
// tampered to claim globex is refused, and its lines name no stamp.
func TestHostileMessages(t *testing.T) {
	c := newConsumer(t, throttle.Limits{Rate: 100, Burst: 100})
	ranAs := map[string]string{}
	h := c.wrap(t, message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		ranAs[string(m.Body)] = tn.ID
		return c.fulfil(ctx, m)
	}))
	acme := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Source: tenant.SourceToken})
	stamped := func(body string, extra map[string]string) map[string]string {
		attrs, err := c.signer.Stamp(acme, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range extra {
			attrs[k] = v
		}
		return attrs
	}
	c.queue.Publish([]byte("baggage"), stamped("baggage", map[string]string{"baggage": "tenant.id=globex"}))
	huge := strings.Repeat("A", 1<<20)
	c.queue.Publish([]byte("huge"), map[string]string{stamp.Attribute: "eyJ" + huge + ".eyJ" + huge + ".x"})
	c.queue.Publish([]byte("utf8"), stamped("utf8", map[string]string{"traceparent": "00-\xff\xfe-01", "baggage": "tenant.id=\xff,\xfe=\xfd"}))
	parts := strings.Split(stamped("tampered", nil)[stamp.Attribute], ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(payload), `"acme"`) {
		t.Fatalf("stamp payload %s: %v", payload, err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"acme"`, `"globex"`, 1)))
	c.queue.Publish([]byte("tampered"), map[string]string{stamp.Attribute: strings.Join(parts, ".")})

	c.queue.Drain(context.Background(), h)

	if ranAs["baggage"] != "acme" || ranAs["utf8"] != "acme" || len(ranAs) != 2 {
		t.Errorf("ran as %v, want baggage and utf8 as acme, no other", ranAs)
	}
	reasons := map[string]string{}
	for _, d := range c.queue.DeadLetters() {
		reasons[string(d.Message.Body)] = d.Reason
	}
	if reasons["huge"] != "stamp:too_large" || !strings.HasPrefix(reasons["tampered"], "stamp:") || len(reasons) != 2 {
		t.Errorf("dead letters %v, want huge too_large and tampered refused", reasons)
	}
	logs := c.logs.String()
	for _, line := range strings.Split(logs, "\n") {
		if len(line) > 4096 {
			t.Errorf("a log line of %d bytes", len(line))
		}
		if strings.Contains(line, "eyJ") {
			t.Errorf("a log line carries a stamp: %.300s", line)
		}
		if strings.Contains(line, `"tenant_id":"globex"`) {
			t.Errorf("a log line names globex, which no stamp proves: %.300s", line)
		}
	}
	for _, l := range c.lines(t, "message") {
		if l["outcome"] == "acked" && l["tenant_id"] != "acme" {
			t.Errorf("message line %v: want tenant acme", l)
		}
	}
}
