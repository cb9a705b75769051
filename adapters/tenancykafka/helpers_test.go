package tenancykafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// wait bounds how long a test waits for something the consumer does:
// an event, not time passing. Reaching it fails the test.
const wait = 30 * time.Second

const group = "fulfillment"

// newCluster starts an in-process Kafka cluster with topics of
// partitions partitions each, closed at the end of the test.
func newCluster(t *testing.T, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newClient returns a plain client of the cluster, closed at the end of
// the test.
func newClient(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newConsumer returns a member of group on topic that polls often.
func newConsumer(t *testing.T, c *kfake.Cluster, topic string, opts ...tenancykafka.Option) *tenancykafka.Consumer {
	t.Helper()
	opts = append([]tenancykafka.Option{
		tenancykafka.WithBlock(10 * time.Millisecond),
		tenancykafka.WithClientOptions(kgo.FetchMaxWait(100 * time.Millisecond)),
	}, opts...)
	con, err := tenancykafka.NewConsumer(c.ListenAddrs(), topic, group, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return con
}

// run runs con with h until the returned stop is called (or the test
// ends), then closes it. stop returns once Run returned.
func run(t *testing.T, con *tenancykafka.Consumer, h message.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- con.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v, want nil once stopped", err)
			}
			con.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// keyByBody keys a record by its body up to the first "-": "acme-1" by
// "acme".
func keyByBody(_ context.Context, body []byte) ([]byte, error) {
	k, _, _ := strings.Cut(string(body), "-")
	return []byte(k), nil
}

// newOrdersProducer publishes to the topic "orders" of c, keyed by body.
func newOrdersProducer(t *testing.T, c *kfake.Cluster) *tenancykafka.Producer {
	t.Helper()
	p, err := tenancykafka.NewProducer(newClient(t, c), "orders", tenancykafka.WithKey(keyByBody))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func publish(t *testing.T, p *tenancykafka.Producer, ctx context.Context, body string, attrs map[string]string) string {
	t.Helper()
	id, err := p.Publish(ctx, []byte(body), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// events records each delivery a handler gets, as "body#deliveries", in
// the order they came, and hands them to the test.
type events struct {
	ch chan string
}

func newEvents() *events { return &events{ch: make(chan string, 1000)} }

// handler returns a handler that records each delivery, then returns what
// next returns (nil without next).
func (ev *events) handler(next func(ctx context.Context, m *message.Message) error) message.Handler {
	return message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		ev.ch <- fmt.Sprintf("%s#%d", m.Body, m.Deliveries)
		if next != nil {
			return next(ctx, m)
		}
		return nil
	})
}

// expect fails the test unless the next deliveries are want, in order.
func (ev *events) expect(t *testing.T, want ...string) {
	t.Helper()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for i, w := range want {
		select {
		case got := <-ev.ch:
			if got != w {
				t.Fatalf("delivery %d: %s, want %s (want in order: %v)", i+1, got, w, want)
			}
		case <-timeout.C:
			t.Fatalf("delivery %d: none within %v, want %s (want in order: %v)", i+1, wait, w, want)
		}
	}
}

// none fails the test when a delivery was recorded that the test did not
// expect.
func (ev *events) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-ev.ch:
		t.Errorf("unexpected delivery %s", got)
	default:
	}
}

// deadLetter is a record of the dead-letter topic.
type deadLetter struct {
	key, body, reason, id, deliveries string
	headers                           map[string]string
}

// readDeadLetters reads the first n records of topic, failing the test
// when fewer come within wait, and returns them by the ID the message had.
func readDeadLetters(t *testing.T, c *kfake.Cluster, topic string, n int) map[string]deadLetter {
	t.Helper()
	cl := newClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out := map[string]deadLetter{}
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%d dead letters within %v, want %d: %v", got, wait, n, out)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			d := deadLetter{key: string(r.Key), body: string(r.Value), headers: map[string]string{}}
			for _, h := range r.Headers {
				switch h.Key {
				case tenancykafka.HeaderReason:
					d.reason = string(h.Value)
				case tenancykafka.HeaderID:
					d.id = string(h.Value)
				case tenancykafka.HeaderDeliveries:
					d.deliveries = string(h.Value)
				default:
					d.headers[h.Key] = string(h.Value)
				}
			}
			out[d.id] = d
		})
	}
	if len(out) != n {
		t.Fatalf("%d dead letters of %d distinct IDs, want %d: %v", got, len(out), n, out)
	}
	return out
}

// committed returns the group's committed offsets of topic, by partition.
func committed(t *testing.T, c *kfake.Cluster, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// summarize returns each dead letter as "key body reason deliveries
// headers", by the ID the message had.
func summarize(dead map[string]deadLetter) map[string]string {
	out := map[string]string{}
	for id, d := range dead {
		out[id] = fmt.Sprintf("%s %s %s %s %v", d.key, d.body, d.reason, d.deliveries, d.headers)
	}
	return out
}
