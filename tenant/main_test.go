package tenant_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// Record tests start goroutines and must wait for every one.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
