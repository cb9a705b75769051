package tenancykafka_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOutcomes: on one partition, an acknowledged record is settled, a
// rejected one dead-lettered with the handler's reason, a failing one
// delivered again after the retry delay until its maximum of deliveries
// and then dead-lettered "max_deliveries", a deferred one delivered again
// when due on the consumer's clock and never dead-lettered; then every
// offset is committed.
func TestOutcomes(t *testing.T) {
	c := newCluster(t, 1, "orders", "orders.dead")
	clk := messagetest.NewClock()
	p := newOrdersProducer(t, c)
	ctx := context.Background()
	ids := map[string]string{}
	for _, b := range []string{"ack", "reject", "fail", "defer"} {
		ids[b] = publish(t, p, ctx, b, map[string]string{"k": "v-" + b})
	}
	ev := newEvents()
	h := ev.handler(func(_ context.Context, m *message.Message) error {
		switch string(m.Body) {
		case "reject":
			return message.Reject("invalid_order")
		case "fail":
			return errors.New("database down")
		case "defer":
			if m.Deliveries == 1 {
				return message.Defer(time.Minute)
			}
		}
		return nil
	})
	con := newConsumer(t, c, "orders", tenancykafka.WithClock(clk.Now),
		tenancykafka.WithMaxDeliveries(3), tenancykafka.WithRetryDelay(time.Second))
	stop := run(t, con, h)

	ev.expect(t, "ack#1", "reject#1", "fail#1", "defer#1")
	clk.Add(time.Second)
	ev.expect(t, "fail#2")
	clk.Add(time.Second)
	ev.expect(t, "fail#3")
	clk.Add(time.Minute - 2*time.Second - time.Millisecond)
	dead := readDeadLetters(t, c, "orders.dead", 2) // fail#3 settled; defer is not due
	clk.Add(time.Millisecond)
	ev.expect(t, "defer#2")
	stop()
	ev.none(t)

	if diff := cmp.Diff(map[string]string{
		ids["reject"]: "reject reject handler:invalid_order 1 map[k:v-reject]",
		ids["fail"]:   "fail fail max_deliveries 3 map[k:v-fail]",
	}, summarize(dead)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[int32]int64{0: 4}, committed(t, c, "orders")); diff != "" {
		t.Errorf("committed offsets (-want +got):\n%s", diff)
	}
}

// TestDeadLetterWriteFails: a rejected record whose dead-letter write
// fails is not settled (its offset is not committed) and is delivered
// again after the retry delay, then dead-lettered once.
func TestDeadLetterWriteFails(t *testing.T) {
	c := newCluster(t, 1, "orders", "orders.dead")
	clk := messagetest.NewClock()
	p := newOrdersProducer(t, c)
	id := publish(t, p, context.Background(), "reject", nil)
	// The next produce request (the dead letter's) is refused.
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		resp.SetVersion(pr.GetVersion())
		for _, rt := range pr.Topics {
			topic := kmsg.NewProduceResponseTopic()
			topic.Topic, topic.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				part := kmsg.NewProduceResponseTopicPartition()
				part.Partition, part.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
				topic.Partitions = append(topic.Partitions, part)
			}
			resp.Topics = append(resp.Topics, topic)
		}
		return resp, nil, true
	})
	ev := newEvents()
	stop := run(t, newConsumer(t, c, "orders", tenancykafka.WithClock(clk.Now), tenancykafka.WithRetryDelay(time.Second),
		tenancykafka.WithLogger(slog.New(slog.DiscardHandler))),
		ev.handler(func(context.Context, *message.Message) error { return message.Reject("invalid_order") }))
	ev.expect(t, "reject#1")
	clk.Add(time.Second)
	ev.expect(t, "reject#2")
	dead := readDeadLetters(t, c, "orders.dead", 1)
	stop()
	ev.none(t)
	if diff := cmp.Diff(map[string]string{id: "reject reject handler:invalid_order 2 map[]"}, summarize(dead)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[int32]int64{0: 1}, committed(t, c, "orders")); diff != "" {
		t.Errorf("committed offsets (-want +got):\n%s", diff)
	}
}
