package tenancylambda_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// panicky is a handler, bound to acme, that panics on a body "boom",
// rejects a body "bad" and acknowledges the others.
func panicky(r *ran) message.Handler {
	return message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))(r.handler(func(m *message.Message) error {
		switch string(m.Body) {
		case "boom":
			panic("boom")
		case "bad":
			return message.Reject("schema")
		}
		return nil
	}))
}

// notPanicking calls f and fails the test when it panics.
func notPanicking(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s panicked: %v", what, p)
		}
	}()
	f()
}

// TestSQSHandlerPanic: a handler that panics on one record of a batch
// fails that record only (a batch item failure); the records before and
// after it keep their outcomes (acknowledged, dead-lettered), and the
// panic is logged. Before, the panic ended the invocation: Lambda then
// delivered the whole batch again, acknowledged and dead-lettered records
// with it, and counted a receive of each toward the redrive policy, which
// dead-lettered the innocent records beside a poison one.
func TestSQSHandlerPanic(t *testing.T) {
	var r ran
	logs := &syncbuf.Buffer{}
	client := &fakeSQS{}
	sh, err := tenancylambda.NewSQS(panicky(&r), tenancylambda.WithSQSClient(client), tenancylambda.WithSQSDeadLetterQueue(dlqURL),
		tenancylambda.WithSQSLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	load(t, "sqs-event.json", &ev)
	for i, body := range []string{"a1", "boom", "bad", "a2"} {
		ev.Records[i].Body = body
	}
	var resp events.SQSEventResponse
	notPanicking(t, "SQSHandler.Handle", func() { resp, err = sh.Handle(context.Background(), ev) })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[1].MessageId}}, resp.BatchItemFailures); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	if n := len(r.list()); n != 4 {
		t.Errorf("%d records handled, want 4", n)
	}
	if len(client.sent) != 1 || aws.ToString(client.sent[0].MessageBody) != "bad" {
		t.Errorf("dead letters %+v, want the rejected record's", client.sent)
	}
	if !strings.Contains(logs.String(), "panicked") || !strings.Contains(logs.String(), ev.Records[1].MessageId) {
		t.Errorf("logs do not name the panic and its record:\n%s", logs)
	}
}

// TestKinesisHandlerPanic: a handler that panics on a record fails it,
// as a batch item failure of its shard; the other shard's records are
// done, and the panic is logged. Before, the panic ended the invocation,
// and Lambda retried the whole batch, every shard's.
func TestKinesisHandlerPanic(t *testing.T) {
	var r ran
	logs := &syncbuf.Buffer{}
	k, err := tenancylambda.NewKinesis(panicky(&r), tenancylambda.WithKinesisLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "shardId-000000000000", "shardId-000000000001"
	var got []string
	notPanicking(t, "KinesisHandler.Handle", func() {
		got = invokeKinesis(t, context.Background(), k, kinesisPayload(
			record{a, "101", "acme", envelope(t, "a1", nil)},
			record{a, "102", "acme", envelope(t, "boom", nil)},
			record{b, "201", "acme", envelope(t, "b1", nil)},
			record{a, "103", "acme", envelope(t, "a3", nil)},
			record{b, "202", "acme", envelope(t, "b2", nil)},
		))
	})
	if diff := cmp.Diff([]string{"102"}, got); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	if n := len(r.list()); n != 4 {
		t.Errorf("%d records handled, want 4 (a1, boom, b1, b2)", n)
	}
	if !strings.Contains(logs.String(), "panicked") {
		t.Errorf("logs do not name the panic:\n%s", logs)
	}
}

// TestEventBridgeHandlerPanic: a handler that panics fails the event
// with an error wrapping ErrRetry, for Lambda's retries and on-failure
// destination, as any failure; it does not panic out of Handle.
func TestEventBridgeHandlerPanic(t *testing.T) {
	var r ran
	eb, err := tenancylambda.NewEventBridge(panicky(&r))
	if err != nil {
		t.Fatal(err)
	}
	ev := eventBridgeEvent(t, "boom", nil)
	notPanicking(t, "EventBridgeHandler.Handle", func() { err = eb.Handle(context.Background(), ev) })
	if !errors.Is(err, tenancylambda.ErrRetry) || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("Handle: %v, want ErrRetry naming the panic", err)
	}
}
