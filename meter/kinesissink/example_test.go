package kinesissink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

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
	rec, err := meter.New("orders", sink, meter.WithMeters(meter.HTTPMeters()...))
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

// printingClient stands in for the Kinesis client and shows what a
// PutRecords call carries.
type printingClient struct{}

func (printingClient) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	for _, e := range in.Records {
		fmt.Printf("partition key %s, JSON %t\n", *e.PartitionKey, json.Valid(e.Data))
	}
	return &kinesis.PutRecordsOutput{FailedRecordCount: new(int32), Records: make([]types.PutRecordsResultEntry, len(in.Records))}, nil
}

// Each record is one Kinesis record whose partition key is its tenant, so
// a consumer sees a tenant's usage in order.
func ExampleNew_partitionKeys() {
	sink, err := kinesissink.New(printingClient{}, "metering")
	if err != nil {
		log.Fatal(err)
	}
	err = sink.Write(context.Background(), []meter.Record{
		{ID: "1", TenantID: "acme", Meter: "orders.created", Value: 3, Unit: meter.UnitCount},
		{ID: "2", Unattributed: true, Meter: "http.requests", Value: 1, Unit: meter.UnitCount},
	})
	fmt.Println("error:", err)
	// Output:
	// partition key acme, JSON true
	// partition key unattributed, JSON true
	// error: <nil>
}
