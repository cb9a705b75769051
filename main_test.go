package tenancy_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// tests start issuers and recorders and must stop every one.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
