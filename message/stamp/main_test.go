package stamp_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// verifiers refresh keys in the background and must be closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
