package kinesisstream_test

import (
	"testing"

	"github.com/tenancykit/tenancy/internal/testservers"
	"go.uber.org/goleak"
)

// The kinesalite the tests share; each test has streams of its own.
var (
	kinesalite    *testservers.KinesaliteServer
	kinesaliteErr error
)

func TestMain(m *testing.M) {
	var stop func()
	kinesalite, stop, kinesaliteErr = testservers.StartKinesalite("--shardLimit", "100000")
	goleak.VerifyTestMain(testservers.AfterRun(m, stop))
}
