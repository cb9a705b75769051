package throttle_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// store promises to need none, and the concurrency tests must wait for
// every goroutine they start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
