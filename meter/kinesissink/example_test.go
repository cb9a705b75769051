package kinesissink_test

import (
	"context"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/meter/kinesissink"
)

// A service ships its metering records to the stream "metering", from
// which the billing pipeline reads them.
func Example() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	sink, err := kinesissink.New(kinesis.NewFromConfig(cfg), "metering")
	if err != nil {
		log.Fatal(err)
	}
	rec, err := meter.New("orders", sink, meter.WithMeters(meter.HTTPMeters...))
	if err != nil {
		log.Fatal(err)
	}
	// ... serve, with meter.Middleware(rec) around the handlers ...

	// On SIGTERM, once the server has drained:
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rec.Shutdown(ctx); err != nil {
		log.Print(err)
	}
}
