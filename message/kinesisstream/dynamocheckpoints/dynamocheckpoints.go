// Package dynamocheckpoints keeps a kinesisstream.Consumer's checkpoints
// in a DynamoDB table, apart from kinesisstream so that a program that
// only publishes, or a Lambda function, does not compile the DynamoDB
// client.
//
// The table's partition key is the string attribute "id"; each shard has
// one item, whose id is the prefix, "/" and the shard ID, and whose
// "sequence" is the checkpoint. One table serves many streams and
// applications, each with a prefix of its own (such as
// "fulfillment/orders"). Reads are strongly consistent. Writes are
// unconditional: one Consumer writes a prefix's checkpoints, as
// kinesisstream requires.
//
// The credentials need dynamodb:GetItem and dynamodb:PutItem on the table.
package dynamocheckpoints

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// API is the part of the DynamoDB client [Checkpoints] uses;
// *dynamodb.Client implements it.
type API interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// The attributes of a checkpoint's item.
const (
	dynamoKey      = "id"       // the table's partition key: prefix + "/" + shard ID
	dynamoSequence = "sequence" // the checkpoint
)

// Checkpoints are the checkpoints of one prefix in a table: a
// kinesisstream.Checkpoints. It is safe for concurrent use.
type Checkpoints struct {
	client API
	table  string
	prefix string
}

var _ kinesisstream.Checkpoints = (*Checkpoints)(nil)

// New returns the checkpoints of prefix (the application and the stream)
// in table.
func New(client API, table, prefix string) (*Checkpoints, error) {
	if client == nil || table == "" || prefix == "" {
		return nil, errors.New("dynamocheckpoints: New needs a client, a table and a prefix (the application and the stream)")
	}
	return &Checkpoints{client: client, table: table, prefix: prefix}, nil
}

func (d *Checkpoints) key(shardID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamoKey: &types.AttributeValueMemberS{Value: d.prefix + "/" + shardID}}
}

// Checkpoint returns the checkpoint of shard shardID, or "".
func (d *Checkpoints) Checkpoint(ctx context.Context, shardID string) (string, error) {
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: d.key(shardID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("dynamocheckpoints: GetItem %s: %w", d.table, err)
	}
	switch v := out.Item[dynamoSequence].(type) {
	case nil:
		return "", nil
	case *types.AttributeValueMemberS:
		return v.Value, nil
	default:
		return "", fmt.Errorf("dynamocheckpoints: the checkpoint of %s in %s is no string", shardID, d.table)
	}
}

// SetCheckpoint stores the checkpoint of shard shardID.
func (d *Checkpoints) SetCheckpoint(ctx context.Context, shardID, sequence string) error {
	item := d.key(shardID)
	item[dynamoSequence] = &types.AttributeValueMemberS{Value: sequence}
	if _, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}); err != nil {
		return fmt.Errorf("dynamocheckpoints: PutItem %s: %w", d.table, err)
	}
	return nil
}
