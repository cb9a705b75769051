package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tenancykit/tenancy/message"
)

// ReceiveMessageAPI is the part of the SQS client a Worker receives with;
// *sqs.Client implements it, and tests swap in their own.
type ReceiveMessageAPI interface {
	ReceiveMessage(ctx context.Context, params *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
}

// DeleteMessageBatchAPI is the part of the SQS client a Worker deletes
// settled messages with.
type DeleteMessageBatchAPI interface {
	DeleteMessageBatch(ctx context.Context, params *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// ChangeMessageVisibilityAPI is the part of the SQS client a Worker defers
// messages, schedules retries and extends the visibility of slow handlers
// with.
type ChangeMessageVisibilityAPI interface {
	ChangeMessageVisibility(ctx context.Context, params *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// SendMessageAPI is the part of the SQS client a Publisher sends with, and
// a Worker dead-letters with.
type SendMessageAPI interface {
	SendMessage(ctx context.Context, params *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Client is what a [Worker] needs of SQS: the four one-method interfaces.
// *sqs.Client implements it.
type Client interface {
	ReceiveMessageAPI
	DeleteMessageBatchAPI
	ChangeMessageVisibilityAPI
	SendMessageAPI
}

var _ Client = (*sqs.Client)(nil)

// Limits of SQS that this package checks before a call.
const (
	// MaxAttributes is how many message attributes SQS takes on one
	// message.
	MaxAttributes = 10
	// MaxVisibility is SQS's longest visibility timeout, which also bounds
	// a deferral.
	MaxVisibility = 12 * time.Hour
	// MaxBatch is the most messages one ReceiveMessage returns and one
	// DeleteMessageBatch deletes.
	MaxBatch = 10
	// MaxWait is SQS's longest long poll (WaitTimeSeconds).
	MaxWait = 20 * time.Second
)

// The attributes a dead letter carries besides the message's own, in the
// order they are added while there is room (see [DeadLetterInput]).
const (
	// AttrReason is the dead-letter reason, "by:reason" as
	// message.OutcomeOf gives it, or "max_deliveries".
	AttrReason = "tenancy-dead-letter-reason"
	// AttrMessageID is the MessageId the message had in its queue.
	AttrMessageID = "tenancy-dead-letter-message-id"
	// AttrSource is the queue the message came from (Message.Source).
	AttrSource = "tenancy-dead-letter-source"
	// AttrDeliveries is how many times it had been delivered.
	AttrDeliveries = "tenancy-dead-letter-deliveries"
)

// ErrTooManyAttributes is wrapped by the error Publish returns for a
// message with more attributes than SQS takes ([MaxAttributes]).
var ErrTooManyAttributes = errors.New("sqsqueue: more message attributes than SQS takes")

// checkAttributes refuses what SQS would refuse: more than MaxAttributes,
// an empty value, a name SQS reserves or does not allow.
func checkAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return fmt.Errorf("%w: %d, at most %d (a stamp takes 3 or 4; send fewer of your own)", ErrTooManyAttributes, len(attrs), MaxAttributes)
	}
	for k, v := range attrs {
		if err := checkName(k); err != nil {
			return err
		}
		if v == "" {
			return fmt.Errorf("sqsqueue: message attribute %q is empty: SQS takes no empty values; leave it out", k)
		}
	}
	return nil
}

func checkName(k string) error {
	lower := strings.ToLower(k)
	switch {
	case k == "", len(k) > 256:
		return fmt.Errorf("sqsqueue: message attribute name %q: SQS takes 1 to 256 characters", k)
	case strings.HasPrefix(lower, "aws."), strings.HasPrefix(lower, "amazon."):
		return fmt.Errorf("sqsqueue: message attribute name %q: SQS reserves names that start with AWS or Amazon and a period", k)
	case k[0] == '.', k[len(k)-1] == '.', strings.Contains(k, ".."):
		return fmt.Errorf("sqsqueue: message attribute name %q: SQS takes no leading, trailing or doubled period", k)
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("sqsqueue: message attribute name %q: SQS takes letters, digits, _, - and . only", k)
		}
	}
	return nil
}

// stringAttributes returns attrs as SQS String message attributes.
func stringAttributes(attrs map[string]string) map[string]types.MessageAttributeValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]types.MessageAttributeValue, len(attrs))
	for k, v := range attrs {
		out[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return out
}

// ToMessage maps a message ReceiveMessage returned to a message.Message:
// ID is its MessageId, Source is source, Deliveries its
// ApproximateReceiveCount, SenderID its SenderId, and Attributes its
// String and Number message attributes (Binary ones are left out: a
// message.Message holds strings).
func ToMessage(source string, m types.Message) *message.Message {
	out := &message.Message{
		ID:     aws.ToString(m.MessageId),
		Body:   []byte(aws.ToString(m.Body)),
		Source: source,
	}
	for k, v := range m.MessageAttributes {
		if v.StringValue == nil {
			continue
		}
		if out.Attributes == nil {
			out.Attributes = make(map[string]string, len(m.MessageAttributes))
		}
		out.Attributes[k] = *v.StringValue
	}
	out.Deliveries, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	out.SenderID = m.Attributes[string(types.MessageSystemAttributeNameSenderId)]
	return out
}

// DeadLetterInput returns the SendMessage input that dead-letters m to
// the queue queueURL with reason: m's body and attributes, then
// [AttrReason], [AttrMessageID], [AttrSource] and [AttrDeliveries] while
// SQS's limit of [MaxAttributes] leaves room (a stamped message leaves
// room for all four; a message that already has ten keeps them all and
// carries no reason, which the caller then logs). The message's own
// attributes of those four names are not copied: a dead letter never
// carries a reason, ID, source or count the message came with.
func DeadLetterInput(queueURL string, m *message.Message, reason string) *sqs.SendMessageInput {
	attrs := make(map[string]string, len(m.Attributes)+4)
	for k, v := range m.Attributes {
		switch k {
		case AttrReason, AttrMessageID, AttrSource, AttrDeliveries:
			// The message's own, forged or of an earlier dead letter: the
			// dead letter's are the consumer's.
			continue
		}
		if v != "" {
			attrs[k] = v
		}
	}
	for _, kv := range [][2]string{
		{AttrReason, reason}, {AttrMessageID, m.ID}, {AttrSource, m.Source}, {AttrDeliveries, strconv.Itoa(m.Deliveries)},
	} {
		if len(attrs) < MaxAttributes && kv[1] != "" {
			attrs[kv[0]] = kv[1]
		}
	}
	return &sqs.SendMessageInput{
		QueueUrl:          aws.String(queueURL),
		MessageBody:       aws.String(string(m.Body)),
		MessageAttributes: stringAttributes(attrs),
	}
}

// VisibilitySeconds returns d as a visibility timeout: whole seconds,
// rounded up, at least 0 and at most [MaxVisibility].
func VisibilitySeconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	if d >= MaxVisibility {
		return int32(MaxVisibility / time.Second)
	}
	return int32(math.Ceil(d.Seconds()))
}

// QueueName returns the name of the queue at queueURL: its last path
// segment.
func QueueName(queueURL string) string {
	u := strings.TrimRight(queueURL, "/")
	if i := strings.LastIndexByte(u, '/'); i >= 0 {
		return u[i+1:]
	}
	return u
}
