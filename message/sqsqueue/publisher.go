package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tenancykit/tenancy/tenant"
)

// Publisher sends messages to one queue. It is safe for concurrent use.
type Publisher struct {
	client   SendMessageAPI
	queueURL string
	fifo     bool
	dedup    func(body []byte, attrs map[string]string) string
}

// NewPublisher returns a Publisher to the queue at queueURL; a URL whose
// name ends in ".fifo" is a FIFO queue. It takes [WithDeduplicationID].
func NewPublisher(client SendMessageAPI, queueURL string, opts ...Option) (*Publisher, error) {
	if client == nil || queueURL == "" {
		return nil, errors.New("sqsqueue: NewPublisher needs a client and a queue URL")
	}
	c := newConfig(opts)
	if err := c.onlyPublisher(); err != nil {
		return nil, err
	}
	return &Publisher{
		client: client, queueURL: queueURL,
		fifo:  strings.HasSuffix(QueueName(queueURL), ".fifo"),
		dedup: c.dedup,
	}, nil
}

// Publish sends a message of body with attrs (stamp.Signer.Stamp's, for
// one) as String message attributes, and returns the MessageId SQS gave
// it, the message's ID for consumers.
//
// The MessageGroupId is the ID of the tenant of ctx (tenant.FromContext),
// whatever its source. A FIFO queue requires one, so publishing to it
// without a tenant is an error; there a group keeps each tenant's messages
// in order, and one tenant's backlog does not hold back another's. On a
// standard queue the group makes it a fair queue: SQS counts each group as
// a tenant, and when one tenant holds a disproportionate share of the
// messages in flight, or of the consumers' processing time, it returns the
// other tenants' messages first, until the noisy tenant's share falls back;
// no message is dropped or throttled, the noisy tenant's only wait longer,
// and a standard queue stays unordered. Without a tenant in ctx a message
// on a standard queue has no group (SQS counts it as a tenant of its own).
//
// It refuses, before any call, more than [MaxAttributes] attributes
// (wrapping [ErrTooManyAttributes]), an empty value and a name SQS does not
// take.
func (p *Publisher) Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	if err := checkAttributes(attrs); err != nil {
		return "", err
	}
	in := &sqs.SendMessageInput{
		QueueUrl:          aws.String(p.queueURL),
		MessageBody:       aws.String(string(body)),
		MessageAttributes: stringAttributes(attrs),
	}
	if t, ok := tenant.FromContext(ctx); ok && t.ID != "" {
		in.MessageGroupId = aws.String(t.ID)
	} else if p.fifo {
		return "", fmt.Errorf("sqsqueue: publishing to the FIFO queue %s needs a tenant in the context, for the MessageGroupId: %w", QueueName(p.queueURL), tenant.ErrNoTenant)
	}
	if p.fifo && p.dedup != nil {
		if id := p.dedup(body, attrs); id != "" {
			in.MessageDeduplicationId = aws.String(id)
		}
	}
	out, err := p.client.SendMessage(ctx, in)
	if err != nil {
		return "", fmt.Errorf("sqsqueue: SendMessage %s: %w", QueueName(p.queueURL), err)
	}
	return aws.ToString(out.MessageId), nil
}
