package meter_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// delivery loop of a Recorder must stop when Shutdown returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
