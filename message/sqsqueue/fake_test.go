package sqsqueue_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// fakeSQS answers the calls of sqsqueue.Client as SQS does, for queues
// it holds in memory: the SDK's types, String attributes, a receipt handle
// that changes on every receive, an ApproximateReceiveCount that counts
// receives, visibility timeouts kept on an injected clock, and a long poll
// that returns when a message is sent or its context is done.
type fakeSQS struct {
	mu      sync.Mutex
	now     func() time.Time
	queues  map[string][]*fakeMsg // by URL
	arrived chan struct{}         // closed and replaced when a message is sent

	// Set by tests.
	sender      string                             // SenderId of what is sent
	failSend    map[string]error                   // by queue URL
	failDelete  func(id string, receives int) bool // entries DeleteMessageBatch fails, by message
	onVisChange func(handle string, secs int32)    // called on each ChangeMessageVisibility

	// Recorded.
	receives   []sqs.ReceiveMessageInput
	visChanges int
	sent       []sqs.SendMessageInput
}

type fakeMsg struct {
	id, body  string
	attrs     map[string]types.MessageAttributeValue
	sender    string
	sent      time.Time
	receives  int
	visibleAt time.Time
	handle    string
}

func newFake(now func() time.Time) *fakeSQS {
	return &fakeSQS{now: now, queues: map[string][]*fakeMsg{}, arrived: make(chan struct{})}
}

func apiError(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	url := aws.ToString(in.QueueUrl)
	f.sent = append(f.sent, *in)
	if err := f.failSend[url]; err != nil {
		return nil, err
	}
	if len(in.MessageAttributes) > 10 {
		return nil, apiError("InvalidParameterValue", "Number of message attributes ["+strconv.Itoa(len(in.MessageAttributes))+"] exceeds the allowed maximum [10].")
	}
	for k, v := range in.MessageAttributes {
		if aws.ToString(v.DataType) != "String" || aws.ToString(v.StringValue) == "" {
			return nil, apiError("InvalidParameterValue", "The message attribute '"+k+"' must contain a non-empty value of message attribute type 'String'.")
		}
	}
	if in.MessageBody == nil || *in.MessageBody == "" {
		return nil, apiError("MissingParameter", "The request must contain the parameter MessageBody.")
	}
	m := &fakeMsg{id: newID(), body: *in.MessageBody, attrs: in.MessageAttributes, sender: f.sender, sent: f.now(), visibleAt: f.now()}
	f.queues[url] = append(f.queues[url], m)
	close(f.arrived)
	f.arrived = make(chan struct{})
	return &sqs.SendMessageOutput{MessageId: aws.String(m.id)}, nil
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if in.MaxNumberOfMessages < 1 || in.MaxNumberOfMessages > 10 || in.WaitTimeSeconds < 0 || in.WaitTimeSeconds > 20 || in.VisibilityTimeout < 0 || in.VisibilityTimeout > 43200 {
		return nil, apiError("InvalidParameterValue", fmt.Sprintf("bad ReceiveMessage input %+v", in))
	}
	for {
		f.mu.Lock()
		f.receives = append(f.receives, *in)
		out := f.receiveLocked(in)
		arrived := f.arrived
		f.mu.Unlock()
		if len(out.Messages) > 0 || in.WaitTimeSeconds == 0 {
			return out, nil
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (f *fakeSQS) receiveLocked(in *sqs.ReceiveMessageInput) *sqs.ReceiveMessageOutput {
	out := &sqs.ReceiveMessageOutput{}
	now := f.now()
	vis := time.Duration(in.VisibilityTimeout) * time.Second
	if in.VisibilityTimeout == 0 {
		vis = 30 * time.Second // the queue's default
	}
	want := map[types.MessageSystemAttributeName]bool{}
	for _, n := range in.MessageSystemAttributeNames {
		want[n] = true
	}
	all := len(in.MessageAttributeNames) == 1 && in.MessageAttributeNames[0] == "All"
	for _, m := range f.queues[aws.ToString(in.QueueUrl)] {
		if len(out.Messages) == int(in.MaxNumberOfMessages) {
			break
		}
		if now.Before(m.visibleAt) {
			continue
		}
		m.receives++
		m.handle = "AQEB" + newID() // a new handle on every receive
		m.visibleAt = now.Add(vis)
		sm := types.Message{MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.handle), Body: aws.String(m.body), Attributes: map[string]string{}}
		if all {
			sm.MessageAttributes = m.attrs
		}
		if want[types.MessageSystemAttributeNameSenderId] {
			sm.Attributes["SenderId"] = m.sender
		}
		if want[types.MessageSystemAttributeNameApproximateReceiveCount] {
			sm.Attributes["ApproximateReceiveCount"] = strconv.Itoa(m.receives)
		}
		if want[types.MessageSystemAttributeNameSentTimestamp] {
			sm.Attributes["SentTimestamp"] = strconv.FormatInt(m.sent.UnixMilli(), 10)
		}
		out.Messages = append(out.Messages, sm)
	}
	return out
}

// byHandle returns the message whose current receipt handle is h.
func (f *fakeSQS) byHandle(url, h string) (int, *fakeMsg) {
	for i, m := range f.queues[url] {
		if m.handle == h && h != "" {
			return i, m
		}
	}
	return -1, nil
}

func (f *fakeSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.mu.Lock()
	f.visChanges++
	hook := f.onVisChange
	if in.VisibilityTimeout < 0 || in.VisibilityTimeout > 43200 {
		f.mu.Unlock()
		return nil, apiError("InvalidParameterValue", "VisibilityTimeout out of range")
	}
	_, m := f.byHandle(aws.ToString(in.QueueUrl), aws.ToString(in.ReceiptHandle))
	if m == nil || !f.now().Before(m.visibleAt) {
		f.mu.Unlock()
		return nil, apiError("MessageNotInflight", "The message referred to is not in flight.")
	}
	m.visibleAt = f.now().Add(time.Duration(in.VisibilityTimeout) * time.Second)
	f.mu.Unlock()
	if hook != nil {
		hook(aws.ToString(in.ReceiptHandle), in.VisibilityTimeout)
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (f *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(in.Entries) == 0 {
		return nil, apiError("AWS.SimpleQueueService.EmptyBatchRequest", "There should be at least one DeleteMessageBatchRequestEntry in the request.")
	}
	if len(in.Entries) > 10 {
		return nil, apiError("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "Maximum number of entries per request are 10.")
	}
	ids := map[string]bool{}
	for _, e := range in.Entries {
		if ids[aws.ToString(e.Id)] {
			return nil, apiError("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id "+aws.ToString(e.Id)+" repeated.")
		}
		ids[aws.ToString(e.Id)] = true
	}
	url := aws.ToString(in.QueueUrl)
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		h := aws.ToString(e.ReceiptHandle)
		i, m := f.byHandle(url, h)
		if m != nil && f.failDelete != nil && f.failDelete(m.id, m.receives) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("We encountered an internal error. Please try again."), SenderFault: false})
			continue
		}
		if i < 0 {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), Message: aws.String("The input receipt handle is invalid."), SenderFault: true})
			continue
		}
		f.queues[url] = append(f.queues[url][:i], f.queues[url][i+1:]...)
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// count returns how many messages the queue at url holds, visible or not.
func (f *fakeSQS) count(url string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queues[url])
}

// bodies returns the bodies of the queue's messages and their attributes.
func (f *fakeSQS) messages(url string) []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeMsg
	for _, m := range f.queues[url] {
		out = append(out, *m)
	}
	return out
}

func (f *fakeSQS) setSender(s string) {
	f.mu.Lock()
	f.sender = s
	f.mu.Unlock()
}

var errSendDown = errors.New("dial tcp: connection refused")

func newID() string { return rand.Text()[:16] }
