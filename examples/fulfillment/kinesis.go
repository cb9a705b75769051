package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tenancykit/tenancy/examples/internal/awskit"
	"github.com/tenancykit/tenancy/message/kinesisstream"
	"github.com/tenancykit/tenancy/message/kinesisstream/dynamocheckpoints"
)

// The Kinesis side of the worker (ORDER_EVENTS=kinesis).
const (
	// deadLetterShards is the shard count of the dead-letter stream
	// created at start with KINESIS_ENDPOINT.
	deadLetterShards = 1
	// checkpointKey is the partition key of dynamocheckpoints' table.
	checkpointKey = "id"
	// tableWait bounds the wait for the checkpoint table created at start
	// with DYNAMODB_ENDPOINT to be ACTIVE.
	tableWait = 30 * time.Second
)

// kinesisSource is the consumer of the order events on a Kinesis stream,
// built by [openKinesis].
type kinesisSource struct {
	consumer *kinesisstream.Consumer
	// checkpoints says where the checkpoints are: "dynamodb" or "memory".
	checkpoints string
	// transports carry every call to Kinesis and DynamoDB; their idle
	// connections are closed by close.
	transports []*http.Transport
}

// close closes the idle connections to AWS.
func (k *kinesisSource) close() {
	for _, tr := range k.transports {
		tr.CloseIdleConnections()
	}
}

// openKinesis returns the consumer of the Kinesis stream
// ORDER_EVENTS_STREAM: it reads every shard, keeps its checkpoints in
// CHECKPOINT_TABLE (DynamoDB, under CONSUMER_GROUP/ORDER_EVENTS_STREAM) or
// in memory, and writes dead letters to DEAD_LETTER_STREAM. With
// KINESIS_ENDPOINT (local development) it creates the two streams when
// they do not exist, the order events' as orders does; with
// DYNAMODB_ENDPOINT, the checkpoint table. In AWS they are provisioned
// outside, and nothing is called at start.
func openKinesis(ctx context.Context, cfg config, getenv func(string) string, hooks runHooks, log *slog.Logger) (*kinesisSource, error) {
	base, tr, err := awskit.LoadConfig(ctx, getenv, cfg.kinesisEndpoint, "ORDER_EVENTS=kinesis")
	if err != nil {
		return nil, err
	}
	k := &kinesisSource{checkpoints: "memory", transports: []*http.Transport{tr}}
	client := kinesis.NewFromConfig(base, func(o *kinesis.Options) {
		if cfg.kinesisEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.kinesisEndpoint)
		}
	})
	if cfg.kinesisEndpoint != "" {
		for _, s := range []struct {
			name, variable string
			shards         int32
		}{{cfg.stream, "ORDER_EVENTS_STREAM", awskit.LocalStreamShards}, {cfg.deadLetter, "DEAD_LETTER_STREAM", deadLetterShards}} {
			if err := awskit.EnsureStream(ctx, client, s.name, s.shards); err != nil {
				k.close()
				return nil, fmt.Errorf("KINESIS_ENDPOINT %s, %s %s: %w", cfg.kinesisEndpoint, s.variable, s.name, err)
			}
		}
	}
	var checkpoints kinesisstream.Checkpoints = &kinesisstream.MemoryCheckpoints{}
	if cfg.checkpointTable != "" {
		dcfg, dtr, err := awskit.LoadConfig(ctx, getenv, cfg.dynamoEndpoint, "CHECKPOINT_TABLE")
		if err != nil {
			k.close()
			return nil, err
		}
		k.transports = append(k.transports, dtr)
		db := dynamodb.NewFromConfig(dcfg, func(o *dynamodb.Options) {
			if cfg.dynamoEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.dynamoEndpoint)
			}
		})
		if cfg.dynamoEndpoint != "" {
			if err := ensureCheckpointTable(ctx, db, cfg.checkpointTable); err != nil {
				k.close()
				return nil, fmt.Errorf("DYNAMODB_ENDPOINT %s, CHECKPOINT_TABLE %s: %w", cfg.dynamoEndpoint, cfg.checkpointTable, err)
			}
		}
		dc, err := dynamocheckpoints.New(db, cfg.checkpointTable, cfg.checkpointPrefix())
		if err != nil {
			k.close()
			return nil, fmt.Errorf("CHECKPOINT_TABLE %s: %w", cfg.checkpointTable, err)
		}
		checkpoints, k.checkpoints = dc, "dynamodb"
	}
	dead, err := kinesisstream.NewPublisher(client, cfg.deadLetter)
	if err != nil {
		k.close()
		return nil, fmt.Errorf("DEAD_LETTER_STREAM %q: %w", cfg.deadLetter, err) // unreachable: config checked the name
	}
	k.consumer, err = kinesisstream.NewConsumer(client, cfg.stream, checkpoints, dead,
		kinesisstream.WithClock(hooks.clock),
		kinesisstream.WithPollInterval(hooks.block),
		kinesisstream.WithLogger(log),
	)
	if err != nil {
		k.close()
		return nil, fmt.Errorf("ORDER_EVENTS_STREAM %q: %w", cfg.stream, err)
	}
	return k, nil
}

// ensureCheckpointTable creates the checkpoint table unless it exists,
// with dynamocheckpoints' key, and waits until it is ACTIVE. A table that
// exists with another key is an error.
func ensureCheckpointTable(ctx context.Context, client *dynamodb.Client, table string) error {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(table),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(checkpointKey), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(checkpointKey), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // another process was first
			return fmt.Errorf("create the table: %w", err)
		}
	case err != nil:
		return fmt.Errorf("describe the table: %w", err)
	default:
		ks := out.Table.KeySchema
		if len(ks) != 1 || aws.ToString(ks[0].AttributeName) != checkpointKey {
			return fmt.Errorf("the table exists with another key: want the partition key %q alone (string), as dynamocheckpoints keeps it", checkpointKey)
		}
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableWait); err != nil {
		return fmt.Errorf("wait for the table: %w", err)
	}
	return nil
}
