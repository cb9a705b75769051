package sqsqueue_test

import (
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/sqsqueue"
)

// TestDeadLetterReasonNotForged: a message that comes with the dead-letter
// attributes of its own (a forged reason, ID, source, count) and fills
// SQS's ten is dead-lettered with the reason the consumer gave and its own
// ID, never the forged ones. Before, the message's attributes were copied
// first and the forged reason stayed, where no room was left for the
// real one; the Worker's check for a missing reason saw one and logged
// nothing.
func TestDeadLetterReasonNotForged(t *testing.T) {
	attrs := map[string]string{
		sqsqueue.AttrReason:     "max_deliveries",
		sqsqueue.AttrMessageID:  "someone-else",
		sqsqueue.AttrSource:     "elsewhere",
		sqsqueue.AttrDeliveries: "99",
	}
	for i := len(attrs); i < sqsqueue.MaxAttributes; i++ {
		attrs["a"+strconv.Itoa(i)] = "v"
	}
	m := &message.Message{ID: "m-1", Source: "orders", Body: []byte("x"), Attributes: attrs, Deliveries: 1}
	in := sqsqueue.DeadLetterInput("https://sqs.us-east-2.amazonaws.com/123456789012/orders-dead", m, "stamp:signature")
	if got := aws.ToString(in.MessageAttributes[sqsqueue.AttrReason].StringValue); got != "stamp:signature" {
		t.Errorf("dead-letter reason %q, want stamp:signature", got)
	}
	if v, ok := in.MessageAttributes[sqsqueue.AttrMessageID]; ok && aws.ToString(v.StringValue) != "m-1" {
		t.Errorf("dead-letter ID %q, want m-1 or none", aws.ToString(v.StringValue))
	}
	if v, ok := in.MessageAttributes[sqsqueue.AttrSource]; ok && aws.ToString(v.StringValue) != "orders" {
		t.Errorf("dead-letter source %q, want orders or none", aws.ToString(v.StringValue))
	}
	if v, ok := in.MessageAttributes[sqsqueue.AttrDeliveries]; ok && aws.ToString(v.StringValue) != "1" {
		t.Errorf("dead-letter deliveries %q, want 1 or none", aws.ToString(v.StringValue))
	}
	if n := len(in.MessageAttributes); n > sqsqueue.MaxAttributes {
		t.Errorf("%d attributes, more than SQS takes", n)
	}
}
