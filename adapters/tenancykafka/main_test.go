package tenancykafka_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: a
// client, a cluster or a Run not stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
