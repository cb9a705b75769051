package tenancykafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tenancykit/tenancy/tenant"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNoKey: Publish was given a context without a tenant, and the
// Producer keys records by it (no [WithKey]). It wraps tenant.ErrNoTenant.
var ErrNoKey = fmt.Errorf("tenancykafka: no key for the record: the context has no tenant (give WithKey to key records otherwise): %w", tenant.ErrNoTenant)

// Producer produces messages to a topic, one record per message, through
// a franz-go client the caller owns. It is safe for concurrent use.
type Producer struct {
	client *kgo.Client
	topic  string
	key    func(ctx context.Context, body []byte) ([]byte, error)
}

// NewProducer returns a Producer to topic through client. It takes
// [WithKey].
func NewProducer(client *kgo.Client, topic string, opts ...Option) (*Producer, error) {
	if client == nil || topic == "" {
		return nil, errors.New("tenancykafka: NewProducer needs a client and a topic")
	}
	c := newConfig(opts)
	if c.consumerOnly() {
		return nil, errors.New("tenancykafka: NewProducer takes only WithKey; the other options apply to NewConsumer")
	}
	if c.key == nil {
		c.key = tenantKey
	}
	return &Producer{client: client, topic: topic, key: c.key}, nil
}

// tenantKey keys a record by the context's tenant.
func tenantKey(ctx context.Context, _ []byte) ([]byte, error) {
	t, ok := tenant.FromContext(ctx)
	if !ok || t.ID == "" {
		return nil, ErrNoKey
	}
	return []byte(t.ID), nil
}

// Publish produces a record of body with attrs as its headers
// (stamp.Signer.Stamp's, for one), keyed as [WithKey] says, and waits
// for the brokers to acknowledge it. It returns the record's
// topic/partition/offset: the message's ID for consumers.
func (p *Producer) Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	key, err := p.key(ctx, body)
	if err != nil {
		return "", err
	}
	if len(key) == 0 {
		return "", errors.New("tenancykafka: WithKey returned an empty key")
	}
	r := &kgo.Record{Topic: p.topic, Key: key, Value: body, Headers: headers(attrs)}
	if err := p.client.ProduceSync(ctx, r).FirstErr(); err != nil {
		return "", fmt.Errorf("tenancykafka: producing to %s: %w", p.topic, err)
	}
	return recordID(r), nil
}

// headers returns attrs as record headers, sorted by name.
func headers(attrs map[string]string) []kgo.RecordHeader {
	if len(attrs) == 0 {
		return nil
	}
	hs := make([]kgo.RecordHeader, 0, len(attrs))
	for k, v := range attrs {
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	slices.SortFunc(hs, func(a, b kgo.RecordHeader) int { return strings.Compare(a.Key, b.Key) })
	return hs
}

// recordID is the message ID of a record: topic/partition/offset.
func recordID(r *kgo.Record) string {
	return r.Topic + "/" + strconv.FormatInt(int64(r.Partition), 10) + "/" + strconv.FormatInt(r.Offset, 10)
}
