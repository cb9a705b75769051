package stamp_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/message/stamp"
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
		{"signer: relative issuer", func() error { _, err := stamp.NewSigner("orders", key, "k1"); return err }, "not an absolute URL"},
		{"signer: no key ID", func() error { _, err := stamp.NewSigner(issuer, key, ""); return err }, "key ID"},
		{"signer: a verifier's option", func() error {
			_, err := stamp.NewSigner(issuer, key, "k1", stamp.WithJWKSURL("https://orders.example.com/jwks"))
			return err
		}, "WithJWKSURL does not apply to NewSigner"},
		{"signer: negative max age", func() error {
			_, err := stamp.NewSigner(issuer, key, "k1", stamp.WithMaxAge(-time.Hour))
			return err
		}, "WithMaxAge"},
		{"verifier: no keys", func() error { _, err := stamp.NewVerifier(context.Background(), issuer); return err }, "WithJWKSURL"},
		{"verifier: two key sources", func() error {
			_, err := stamp.NewVerifier(context.Background(), issuer, stamp.WithJWKS(s.JWKS()), stamp.WithJWKSURL("https://orders.example.com/jwks"))
			return err
		}, "keep one"},
		{"verifier: a signer's option", func() error {
			_, err := stamp.NewVerifier(context.Background(), issuer, stamp.WithJWKS(s.JWKS()), stamp.WithMaxAge(time.Hour))
			return err
		}, "WithMaxAge does not apply to NewVerifier"},
		{"signer: a replay store", func() error {
			_, err := stamp.NewSigner(issuer, key, "k1", stamp.WithReplayStore(&fakeStore{}))
			return err
		}, "WithReplayStore does not apply to NewSigner"},
	} {
		err := tc.err()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "stamp: ") {
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	v, _ := newVerifier(t, s, newClock())
	for name, f := range map[string]func(){
		"Trusted without a verifier": func() { stamp.Trusted(nil) },
		"Trusted without a handler":  func() { stamp.Trusted(v)(nil) },
	} {
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.HasPrefix(fmt.Sprint(p), "stamp: ") {
					t.Errorf("%s: panic %v, want one of package stamp", name, p)
				}
			}()
			f()
		}()
	}
}
