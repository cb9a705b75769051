package message_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/message"
)

// TestConfigurationMistakes: a mistake panics when the trust mode is
// built, naming the option.
func TestConfigurationMistakes(t *testing.T) {
	for name, f := range map[string]func(){
		"UnverifiedAttribute with WithSessionPrefix": func() { message.UnverifiedAttribute("tenant", message.WithSessionPrefix("t-")) },
		"UnverifiedAttribute without a name":         func() { message.UnverifiedAttribute("") },
	} {
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.HasPrefix(fmt.Sprint(p), "message: ") {
					t.Errorf("%s: panic %v, want one of package message", name, p)
				}
			}()
			f()
		}()
	}
}

// TestOutcomeOf: transports classify what a handler returned, wrapped or
// not.
func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		err    error
		want   message.Outcome
		after  time.Duration
		reason string
	}{
		{nil, message.Acked, 0, ""},
		{message.Defer(3 * time.Second), message.Deferred, 3 * time.Second, ""},
		{message.Defer(-time.Second), message.Deferred, 0, ""},
		{fmt.Errorf("busy: %w", message.Defer(time.Minute)), message.Deferred, time.Minute, ""},
		{message.Reject("invalid_order"), message.Rejected, 0, "handler:invalid_order"},
		{fmt.Errorf("x: %w", &message.RejectError{By: "stamp", Reason: "expired"}), message.Rejected, 0, "stamp:expired"},
		{errors.New("database down"), message.Failed, 0, ""},
	} {
		o, after, reason := message.OutcomeOf(tc.err)
		if o != tc.want || after != tc.after || reason != tc.reason {
			t.Errorf("OutcomeOf(%v) = %v, %v, %q; want %v, %v, %q", tc.err, o, after, reason, tc.want, tc.after, tc.reason)
		}
	}
}
