package tenant_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// Transport tests start servers and must close every one.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
