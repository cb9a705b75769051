package tenancykafka

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of the options, in one place.
const (
	DefaultBatch         = 100
	DefaultBlock         = time.Second
	DefaultMaxDeliveries = 5
	DefaultMaxPending    = 100
	DefaultRetryDelay    = time.Second
)

// Option configures a [Consumer] or a [Producer]; each says which. A nil
// Option is ignored, and an option given its zero value leaves the
// default. An option given to the constructor it does not apply to is an
// error.
type Option func(*config)

type config struct {
	now           func() time.Time
	batch         int
	block         time.Duration
	maxDeliveries int
	maxPending    int
	retryDelay    time.Duration
	deadLetter    string
	logger        *slog.Logger
	clientOpts    []kgo.Opt
	key           func(ctx context.Context, body []byte) ([]byte, error)
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// consumerOnly reports whether c sets an option only a Consumer takes.
func (c *config) consumerOnly() bool {
	return c.now != nil || c.batch != 0 || c.block != 0 || c.maxDeliveries != 0 || c.maxPending != 0 ||
		c.retryDelay != 0 || c.deadLetter != "" || c.logger != nil || len(c.clientOpts) != 0
}

// consumerDefaults fills in what was left to the defaults.
func (c *config) consumerDefaults(topic string) {
	if c.now == nil {
		c.now = time.Now
	}
	if c.batch == 0 {
		c.batch = DefaultBatch
	}
	if c.block == 0 {
		c.block = DefaultBlock
	}
	if c.maxDeliveries == 0 {
		c.maxDeliveries = DefaultMaxDeliveries
	}
	if c.maxPending == 0 {
		c.maxPending = DefaultMaxPending
	}
	if c.retryDelay == 0 {
		c.retryDelay = DefaultRetryDelay
	}
	if c.deadLetter == "" {
		c.deadLetter = topic + ".dead"
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
}

// WithClock sets a Consumer's time source for the due times of deferred
// and failed records: a record deferred by d is due d after its delivery
// began. Default time.Now, also for nil.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithBatch sets at most how many records a Consumer takes from the
// client in one poll, across its partitions. Default [DefaultBatch].
func WithBatch(n int) Option { return func(c *config) { c.batch = n } }

// WithBlock sets how long a Consumer waits for new records when it has
// nothing to do, which bounds how late (in real time) a deferred record is
// delivered again once due, and how long Consumer.Run takes to return once
// its context is done and the handlers in flight returned. Default
// [DefaultBlock].
func WithBlock(d time.Duration) Option { return func(c *config) { c.block = d } }

// WithMaxDeliveries sets how many deliveries a failing record gets before
// a Consumer dead-letters it with the reason "max_deliveries". Deferrals
// never dead-letter a record. Default [DefaultMaxDeliveries].
func WithMaxDeliveries(n int) Option { return func(c *config) { c.maxDeliveries = n } }

// WithMaxPending bounds, per partition, how many records a Consumer keeps
// unsettled in memory: deferred, failed and waiting for their retry, or
// waiting behind an unsettled record of the same key. A partition whose
// set is full gets no new records until one of them settles (its fetching
// is paused). Default [DefaultMaxPending].
func WithMaxPending(n int) Option { return func(c *config) { c.maxPending = n } }

// WithRetryDelay sets how long a failed record waits before a Consumer
// delivers it again, and how long a record waits whose dead-letter write
// failed. Default [DefaultRetryDelay].
func WithRetryDelay(d time.Duration) Option { return func(c *config) { c.retryDelay = d } }

// WithDeadLetterTopic names the topic a Consumer produces rejected records
// to. The topic must exist, or the brokers must create it. Default: the
// topic's name + ".dead".
func WithDeadLetterTopic(name string) Option { return func(c *config) { c.deadLetter = name } }

// WithLogger sets where a Consumer reports the Kafka errors it retries
// after and the panics of its handler. Default, also for nil:
// slog.Default.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClientOptions passes options to the franz-go client a Consumer
// creates: TLS, SASL, the client ID, fetch sizes, timeouts of the group
// (kgo.SessionTimeout, kgo.RebalanceTimeout, which must exceed the longest
// a batch of handlers takes), where a new group starts
// (kgo.ConsumeResetOffset). The options that make the Consumer what it is
// win over these: its group, its topic, no automatic commits, rebalances
// blocked while records are handled, and its callbacks on assignment and
// revocation. Default none.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithKey sets how a Producer keys a record: key returns the key of a
// record of body published with ctx. Kafka puts records of one key on one
// partition, in the order they were produced. An error, or an empty key,
// fails Publish. Default: the ID of the context's tenant
// (tenant.FromContext), so that a tenant's records stay in order; a
// context without a tenant fails Publish with [ErrNoKey].
func WithKey(key func(ctx context.Context, body []byte) ([]byte, error)) Option {
	return func(c *config) { c.key = key }
}
