package kinesissink_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// SDK's HTTP connections to kinesalite must be closed at each test's end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
