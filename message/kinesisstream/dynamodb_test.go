package kinesisstream_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message/kinesisstream"
	"github.com/tenancykit/tenancy/message/kinesisstream/dynamocheckpoints"
)

// TestDynamoDBCheckpoints: a consumer stopped mid-batch leaves its
// checkpoint in a DynamoDB table; a consumer of another process (a new
// client, new checkpoints) resumes after it; another prefix in the same
// table is another application's.
func TestDynamoDBCheckpoints(t *testing.T) {
	d := testservers.Dynalite(t)
	db := dynamodb.NewFromConfig(testservers.AWSConfig(t), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) })
	if _, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String("checkpoints"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	// Active at once in dynalite, as its create returns or a moment later.
	w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 10 * time.Millisecond })
	if err := w.Wait(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String("checkpoints")}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	newCheckpoints := func(prefix string) *dynamocheckpoints.Checkpoints {
		cp, err := dynamocheckpoints.New(db, "checkpoints", prefix)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}

	client, stream := shared(t, 1)
	p := newPublisher(t, client, stream)
	var ids []string
	for _, b := range []string{"1", "2", "3"} {
		ids = append(ids, publish(t, p, "acme", b, nil))
	}
	var first messagetest.Recorder
	c1 := newConsumer(t, client, client, stream, newCheckpoints("fulfillment/"+stream), kinesisstream.WithBatch(2))
	poll(t, c1, acme(first.Handler(nil)), 2)

	var second messagetest.Recorder
	c2 := newConsumer(t, client, client, stream, newCheckpoints("fulfillment/"+stream))
	poll(t, c2, acme(second.Handler(nil)), 1)
	if diff := cmp.Diff(ids[2:], second.Delivered()); diff != "" {
		t.Errorf("resumed (-want +got):\n%s", diff)
	}
	seq, err := newCheckpoints("fulfillment/"+stream).Checkpoint(t.Context(), shardOf(ids[0]))
	if err != nil || seq != seqOf(ids[2]) {
		t.Errorf("checkpoint %q, %v; want %s", seq, err, seqOf(ids[2]))
	}

	var other messagetest.Recorder
	c3 := newConsumer(t, client, client, stream, newCheckpoints("billing/"+stream))
	poll(t, c3, acme(other.Handler(nil)), 3)

	if _, err := dynamocheckpoints.New(db, "checkpoints", ""); err == nil {
		t.Error("NewDynamoDBCheckpoints without a prefix: no error")
	}
}
