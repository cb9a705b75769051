package message_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/message"
)

// TestConfigurationMistakes: a mistake is reported by the constructor,
// naming the option.
func TestConfigurationMistakes(t *testing.T) {
	s := newSigner(t, newClock())
	key := newKey(t)
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"signer: relative issuer", func() error { _, err := message.NewSigner("orders", key, "k1"); return err }, "not an absolute URL"},
		{"signer: no key ID", func() error { _, err := message.NewSigner(issuer, key, ""); return err }, "key ID"},
		{"signer: a verifier's option", func() error {
			_, err := message.NewSigner(issuer, key, "k1", message.WithJWKSURL("https://orders.example.com/jwks"))
			return err
		}, "WithJWKSURL does not apply to NewSigner"},
		{"signer: negative max age", func() error {
			_, err := message.NewSigner(issuer, key, "k1", message.WithMaxAge(-time.Hour))
			return err
		}, "WithMaxAge"},
		{"verifier: no keys", func() error { _, err := message.NewStampVerifier(context.Background(), issuer); return err }, "WithJWKSURL"},
		{"verifier: two key sources", func() error {
			_, err := message.NewStampVerifier(context.Background(), issuer, message.WithJWKS(s.JWKS()), message.WithJWKSURL("https://orders.example.com/jwks"))
			return err
		}, "keep one"},
		{"verifier: a signer's option", func() error {
			_, err := message.NewStampVerifier(context.Background(), issuer, message.WithJWKS(s.JWKS()), message.WithMaxAge(time.Hour))
			return err
		}, "WithMaxAge does not apply to NewStampVerifier"},
	} {
		err := tc.err()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "message: ") {
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	for name, f := range map[string]func(){
		"UnverifiedAttribute with WithSessionPrefix": func() { message.UnverifiedAttribute("tenant", message.WithSessionPrefix("t-")) },
		"UnverifiedAttribute without a name":         func() { message.UnverifiedAttribute("") },
		"Stamped without a verifier":                 func() { message.Stamped(nil) },
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
