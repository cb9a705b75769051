package tenancylambda_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/message/stamp"
)

// TestEventBridgeEnvelopeTricks: details built to confuse the envelope
// never run as a tenant their verified stamp does not prove, and hostile
// ones are refused with a reason, without a panic: a body and a
// body_base64 both (the body is the one verified and handled), two
// "attributes" keys or two stamps (the last is the one verified), keys
// in another case, JSON nested 100 000 deep, a stamp of 1 MB (refused
// too_large, and the error does not carry it).
func TestEventBridgeEnvelopeTricks(t *testing.T) {
	s := newStampSigner(t)
	h, ran := messageStack(t, s)
	eb, err := tenancylambda.NewEventBridge(h)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	acme := stampFor(t, s, "acme", "paid")[stamp.Attribute]
	forgedGlobex := stampFor(t, newStampSigner(t), "globex", "paid")[stamp.Attribute]
	huge := strings.Repeat("a", 1<<20)
	cases := []struct {
		name, detail string
		ran          string // the tenant it ran as, "" when refused
		reason       string
	}{
		{"body verified, body_base64 ignored", `{"attributes":{"tenancy-stamp":` + js(acme) + `},"body":"paid","body_base64":"` + b64("refund") + `"}`, "acme", ""},
		{"body_base64 verified, body another", `{"attributes":{"tenancy-stamp":` + js(acme) + `},"body":"refund","body_base64":"` + b64("paid") + `"}`, "", "stamp:body_digest"},
		{"two attributes, forged last", `{"attributes":{"tenancy-stamp":` + js(acme) + `},"attributes":{"tenancy-stamp":` + js(forgedGlobex) + `},"body":"paid"}`, "", "stamp:signature"},
		{"two stamps, forged last", `{"attributes":{"tenancy-stamp":` + js(acme) + `,"tenancy-stamp":` + js(forgedGlobex) + `},"body":"paid"}`, "", "stamp:signature"},
		{"stamp name in another case", `{"attributes":{"Tenancy-Stamp":` + js(acme) + `},"body":"paid"}`, "", "stamp:missing"},
		{"deeply nested", `{"attributes":{"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `},"body":"paid"}`, "", "stamp:missing"},
		{"1 MB stamp", `{"attributes":{"tenancy-stamp":"` + huge + `.` + huge + `.x"},"body":"paid"}`, "", "stamp:too_large"},
		{"invalid UTF-8 in a stamp", "{\"attributes\":{\"tenancy-stamp\":\"\xff\xfe.\xff\"},\"body\":\"paid\"}", "", "stamp:malformed"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := eventBridgeEvent(t, "paid", nil)
			ev.ID = "trick-" + string(rune('a'+i))
			ev.Detail = json.RawMessage(c.detail)
			var err error
			notPanicking(t, "Handle", func() { err = eb.Handle(context.Background(), ev) })
			got := ran.got()[ev.ID]
			if got != c.ran {
				t.Errorf("ran as %q, want %q", got, c.ran)
			}
			if c.reason == "" {
				if err != nil {
					t.Errorf("Handle: %v", err)
				}
				return
			}
			if !errors.Is(err, tenancylambda.ErrRejected) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("Handle: %v, want ErrRejected naming %s", err, c.reason)
			}
			if err != nil && (len(err.Error()) > 1000 || strings.Contains(err.Error(), "eyJ")) {
				t.Errorf("the error carries the stamp (%d bytes)", len(err.Error()))
			}
		})
	}
}
