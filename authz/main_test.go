package authz_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind: a
// verifier's JWK Set refresh, an issuer's server or a client connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
