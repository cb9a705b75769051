package dynamocheckpoints_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message/kinesisstream"
	"github.com/tenancykit/tenancy/message/kinesisstream/dynamocheckpoints"
)

// TestCheckpoints: a shard without a checkpoint has "", one stored is
// read back by another client, prefixes do not see each other's, and an
// item whose sequence is no string is an error, not a checkpoint.
func TestCheckpoints(t *testing.T) {
	d := testservers.Dynalite(t)
	cfg := testservers.AWSConfig(t)
	cfg.RetryMaxAttempts = 1 // the server is stopped at the end
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) })
	ctx := context.Background()
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("checkpoints"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	// Active at once in dynalite, as its create returns or a moment later.
	w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 10 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("checkpoints")}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	open := func(prefix string) *dynamocheckpoints.Checkpoints {
		cp, err := dynamocheckpoints.New(db, "checkpoints", prefix)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	a, b := open("fulfillment/orders"), open("billing/orders")
	const shard = "shardId-000000000000"
	if seq, err := a.Checkpoint(ctx, shard); seq != "" || err != nil {
		t.Errorf("Checkpoint of a new shard = %q, %v", seq, err)
	}
	for _, seq := range []string{"49", "50", kinesisstream.ShardEnd} {
		if err := a.SetCheckpoint(ctx, shard, seq); err != nil {
			t.Fatal(err)
		}
		if got, err := open("fulfillment/orders").Checkpoint(ctx, shard); got != seq || err != nil {
			t.Errorf("Checkpoint = %q, %v; want %q", got, err, seq)
		}
	}
	if seq, err := b.Checkpoint(ctx, shard); seq != "" || err != nil {
		t.Errorf("another prefix's Checkpoint = %q, %v", seq, err)
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("checkpoints"), Item: map[string]types.AttributeValue{
		"id": &types.AttributeValueMemberS{Value: "billing/orders/" + shard}, "sequence": &types.AttributeValueMemberN{Value: "49"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Checkpoint(ctx, shard); err == nil || !strings.Contains(err.Error(), "no string") {
		t.Errorf("a number for a checkpoint: %v", err)
	}
	if _, err := dynamocheckpoints.New(db, "", "p"); err == nil {
		t.Error("New without a table: no error")
	}
	d.Stop()
	if err := a.SetCheckpoint(ctx, shard, "51"); err == nil {
		t.Error("SetCheckpoint with DynamoDB down: no error")
	}
}
