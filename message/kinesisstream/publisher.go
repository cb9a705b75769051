package kinesisstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// PutRecordAPI is the part of the Kinesis client a Publisher uses;
// *kinesis.Client implements it.
type PutRecordAPI interface {
	PutRecord(ctx context.Context, params *kinesis.PutRecordInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordOutput, error)
}

var _ PutRecordAPI = (*kinesis.Client)(nil)

// The attributes a dead letter adds to those of the message.
const (
	// AttrReason is the reason a message was dead-lettered:
	// message.OutcomeOf's ("stamp:missing", "handler:invalid_order"), or
	// "max_deliveries".
	AttrReason = "tenancy-dead-reason"
	// AttrID is the ID the message had ([MessageID]).
	AttrID = "tenancy-dead-id"
	// AttrSource is the stream the message came from.
	AttrSource = "tenancy-dead-source"
	// AttrDeliveries is how many times it was delivered ("0" when
	// unknown).
	AttrDeliveries = "tenancy-dead-deliveries"
)

// maxReason is the most of a reason a dead letter keeps, in bytes.
const maxReason = 256

// maxKeyChars is Kinesis's limit on a partition key, in characters.
const maxKeyChars = 256

// ErrNoPartitionKey is returned by Publish when it finds no partition
// key: no tenant in the context and no [WithPartitionKey], or a key
// function that returned "".
var ErrNoPartitionKey = errors.New("kinesisstream: no partition key: publish with a tenant in the context, or give WithPartitionKey")

// Publisher writes messages to a stream, one record each (PutRecord): the
// body and the attributes in an envelope ([Encode]). It is safe for
// concurrent use.
type Publisher struct {
	client PutRecordAPI
	stream string // name, unless arn
	arn    string
	key    func(ctx context.Context, body []byte) string
}

// NewPublisher returns a Publisher to stream, a stream's name or ARN. It
// takes [WithPartitionKey].
func NewPublisher(client PutRecordAPI, stream string, opts ...Option) (*Publisher, error) {
	if client == nil || stream == "" {
		return nil, errors.New("kinesisstream: NewPublisher needs a client and a stream")
	}
	c := newConfig(opts)
	if len(c.consumerOnly) > 0 {
		return nil, fmt.Errorf("kinesisstream: %s applies to NewConsumer, not NewPublisher", strings.Join(c.consumerOnly, ", "))
	}
	p := &Publisher{client: client, stream: stream, key: c.partitionKey}
	if strings.HasPrefix(stream, "arn:") {
		p.stream, p.arn = "", stream
	}
	return p, nil
}

// Publish writes a message of body with attrs (stamp.Signer.Stamp's, for
// one) and returns its ID for consumers ([MessageID]: the shard and the
// sequence number Kinesis gave the record). The partition key is the
// context's tenant, or WithPartitionKey's. A message whose record would
// exceed [MaxRecordBytes] less [DeadLetterHeadroom] is refused with
// [ErrTooLarge], before anything is sent.
func (p *Publisher) Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	var key string
	if p.key != nil {
		key = p.key(ctx, body)
	} else if t, ok := tenant.FromContext(ctx); ok {
		key = t.ID
	}
	if key == "" {
		return "", ErrNoPartitionKey
	}
	data, err := Encode(body, attrs)
	if err != nil {
		return "", err
	}
	if n := len(data) + len(key); n > MaxRecordBytes-DeadLetterHeadroom {
		return "", fmt.Errorf("%w: %d bytes with its attributes and partition key, at most %d (1 MiB less %d for a dead letter's attributes)",
			ErrTooLarge, n, MaxRecordBytes-DeadLetterHeadroom, DeadLetterHeadroom)
	}
	return p.put(ctx, key, data)
}

// DeadLetter writes m to the Publisher's stream as a dead letter: its
// body and attributes, and the attributes [AttrReason] (reason, cut to 256
// bytes), [AttrID], [AttrSource] and [AttrDeliveries], under partitionKey
// (the record's own, so that a tenant's dead letters stay in order; m's ID
// when empty). A Consumer writes its dead letters with it, and so can a
// Lambda function.
func (p *Publisher) DeadLetter(ctx context.Context, m *message.Message, partitionKey, reason string) error {
	attrs := make(map[string]string, len(m.Attributes)+4)
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	attrs[AttrReason] = cut(reason, maxReason)
	attrs[AttrID] = m.ID
	attrs[AttrSource] = m.Source
	attrs[AttrDeliveries] = strconv.Itoa(m.Deliveries)
	if partitionKey == "" {
		partitionKey = cut(m.ID, maxKeyChars)
	}
	data, err := Encode(m.Body, attrs)
	if err != nil {
		return err
	}
	if n := len(data) + len(partitionKey); n > MaxRecordBytes {
		return fmt.Errorf("%w: the dead letter of %s takes %d bytes", ErrTooLarge, m.ID, n)
	}
	_, err = p.put(ctx, partitionKey, data)
	return err
}

func (p *Publisher) put(ctx context.Context, key string, data []byte) (string, error) {
	if utf8.RuneCountInString(key) > maxKeyChars {
		return "", fmt.Errorf("kinesisstream: partition key of %d characters, at most %d", utf8.RuneCountInString(key), maxKeyChars)
	}
	in := &kinesis.PutRecordInput{Data: data, PartitionKey: aws.String(key)}
	if p.arn != "" {
		in.StreamARN = aws.String(p.arn)
	} else {
		in.StreamName = aws.String(p.stream)
	}
	out, err := p.client.PutRecord(ctx, in)
	if err != nil {
		return "", fmt.Errorf("kinesisstream: PutRecord %s: %w", p.name(), err)
	}
	return MessageID(aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber)), nil
}

func (p *Publisher) name() string { return p.stream + p.arn }

// cut returns s cut to at most n bytes, on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
