package kinesisstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBAPI is the part of the DynamoDB client [DynamoDBCheckpoints]
// uses; *dynamodb.Client implements it.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var _ DynamoDBAPI = (*dynamodb.Client)(nil)

// The attributes of a checkpoint's item.
const (
	dynamoKey      = "id"       // the table's partition key: prefix + "/" + shard ID
	dynamoSequence = "sequence" // the checkpoint
)

// DynamoDBCheckpoints keeps checkpoints in a DynamoDB table whose
// partition key is the string attribute "id": one item per shard, whose
// id is the prefix, "/" and the shard ID, and whose "sequence" is the
// checkpoint. One table serves many streams and applications, each with
// a prefix of its own (such as "fulfillment/orders"). Reads are strongly
// consistent. It is safe for concurrent use.
//
// The credentials need dynamodb:GetItem and dynamodb:PutItem on the table.
type DynamoDBCheckpoints struct {
	client DynamoDBAPI
	table  string
	prefix string
}

var _ Checkpoints = (*DynamoDBCheckpoints)(nil)

// NewDynamoDBCheckpoints returns the checkpoints of prefix (the
// application and the stream) in table.
func NewDynamoDBCheckpoints(client DynamoDBAPI, table, prefix string) (*DynamoDBCheckpoints, error) {
	if client == nil || table == "" || prefix == "" {
		return nil, errors.New("kinesisstream: NewDynamoDBCheckpoints needs a client, a table and a prefix (the application and the stream)")
	}
	return &DynamoDBCheckpoints{client: client, table: table, prefix: prefix}, nil
}

func (d *DynamoDBCheckpoints) key(shardID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamoKey: &types.AttributeValueMemberS{Value: d.prefix + "/" + shardID}}
}

// Checkpoint returns the checkpoint of shard shardID, or "".
func (d *DynamoDBCheckpoints) Checkpoint(ctx context.Context, shardID string) (string, error) {
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: d.key(shardID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("kinesisstream: GetItem %s: %w", d.table, err)
	}
	switch v := out.Item[dynamoSequence].(type) {
	case nil:
		return "", nil
	case *types.AttributeValueMemberS:
		return v.Value, nil
	default:
		return "", fmt.Errorf("kinesisstream: the checkpoint of %s in %s is no string", shardID, d.table)
	}
}

// SetCheckpoint stores the checkpoint of shard shardID.
func (d *DynamoDBCheckpoints) SetCheckpoint(ctx context.Context, shardID, sequence string) error {
	item := d.key(shardID)
	item[dynamoSequence] = &types.AttributeValueMemberS{Value: sequence}
	if _, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}); err != nil {
		return fmt.Errorf("kinesisstream: PutItem %s: %w", d.table, err)
	}
	return nil
}
