package tenancykafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProducerKeys: records are keyed by the tenant of the context, so a
// tenant's records share a partition; a context without a tenant, a key
// function's error and an empty key fail Publish and produce nothing.
func TestProducerKeys(t *testing.T) {
	c := newCluster(t, 8, "orders")
	client := newClient(t, c)
	p, err := tenancykafka.NewProducer(client, "orders")
	if err != nil {
		t.Fatal(err)
	}
	partitions := map[string]string{}
	for range 5 {
		for _, tn := range []string{"acme", "globex"} {
			id := publish(t, p, messagetest.As(tn), tn, map[string]string{"b": "2", "a": "1"})
			part := id[:strings.LastIndex(id, "/")]
			if prev, ok := partitions[tn]; ok && prev != part {
				t.Errorf("%s's records on %s and %s, want one partition", tn, prev, part)
			}
			partitions[tn] = part
		}
	}
	if _, err := p.Publish(context.Background(), []byte("x"), nil); !errors.Is(err, tenancykafka.ErrNoKey) || !errors.Is(err, tenant.ErrNoTenant) {
		t.Errorf("Publish without a tenant = %v, want ErrNoKey wrapping tenant.ErrNoTenant", err)
	}
	boom := errors.New("no order ID")
	failing, _ := tenancykafka.NewProducer(client, "orders", tenancykafka.WithKey(func(context.Context, []byte) ([]byte, error) { return nil, boom }))
	if _, err := failing.Publish(context.Background(), []byte("x"), nil); !errors.Is(err, boom) {
		t.Errorf("Publish with a failing key = %v, want its error", err)
	}
	empty, _ := tenancykafka.NewProducer(client, "orders", tenancykafka.WithKey(func(context.Context, []byte) ([]byte, error) { return nil, nil }))
	if _, err := empty.Publish(context.Background(), []byte("x"), nil); err == nil {
		t.Error("Publish with an empty key: no error")
	}

	// Exactly the ten records, with their headers.
	reader := newClient(t, c, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 10 && ctx.Err() == nil {
		got = append(got, reader.PollFetches(ctx).Records()...)
	}
	if len(got) != 10 {
		t.Fatalf("%d records, want 10", len(got))
	}
	for _, r := range got {
		if string(r.Key) != string(r.Value) || len(r.Headers) != 2 || r.Headers[0].Key != "a" || string(r.Headers[1].Value) != "2" {
			t.Errorf("record key %q value %q headers %v, want the tenant as key and the attributes a=1, b=2", r.Key, r.Value, r.Headers)
		}
	}
}

func TestConfigurationMistakes(t *testing.T) {
	brokers := []string{"127.0.0.1:1"}
	for name, opts := range map[string][]tenancykafka.Option{
		"WithKey":                {tenancykafka.WithKey(func(context.Context, []byte) ([]byte, error) { return nil, nil })},
		"WithMaxPending(-1)":     {tenancykafka.WithMaxPending(-1)},
		"WithBlock(-1)":          {tenancykafka.WithBlock(-1)},
		"the topic as dead ones": {tenancykafka.WithDeadLetterTopic("orders")},
	} {
		if _, err := tenancykafka.NewConsumer(brokers, "orders", group, opts...); err == nil {
			t.Errorf("NewConsumer %s: no error", name)
		}
	}
	if _, err := tenancykafka.NewConsumer(brokers, "orders", ""); err == nil {
		t.Error("NewConsumer without a group: no error")
	}
	direct := kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"orders": {0: kgo.NewOffset()}})
	if con, err := tenancykafka.NewConsumer(brokers, "orders", group, tenancykafka.WithClientOptions(direct)); err == nil {
		con.Close()
		t.Error("NewConsumer with a client option that contradicts the group: no error")
	}
	if _, err := tenancykafka.NewProducer(nil, "orders"); err == nil {
		t.Error("NewProducer without a client: no error")
	}
	c := newCluster(t, 1, "orders")
	if _, err := tenancykafka.NewProducer(newClient(t, c), "orders", tenancykafka.WithMaxPending(3)); err == nil {
		t.Error("NewProducer WithMaxPending: no error")
	}
	con, err := tenancykafka.NewConsumer(c.ListenAddrs(), "orders", group)
	if err != nil {
		t.Fatal(err)
	}
	if err := con.Run(context.Background(), nil); err == nil {
		t.Error("Run without a handler: no error")
	}
	con.Close()
}
