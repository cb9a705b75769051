package logging_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: an
// httptest server, a client connection, an issuer or a verifier's refresh.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
