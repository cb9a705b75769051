package kinesisstream

import (
	"context"
	"log/slog"
	"time"
)

// Defaults of the options, in one place.
const (
	DefaultBatch         = 1000
	DefaultPollInterval  = time.Second
	DefaultMaxDeliveries = 5
	DefaultRetryDelay    = time.Second
	DefaultMaxPending    = 1000
	DefaultShardRefresh  = time.Minute
)

// Option configures a [Consumer] or a [Publisher]; each says which. A nil
// Option is ignored, and an option given its zero value leaves the
// default.
type Option func(*config)

type config struct {
	// Consumer
	now           func() time.Time
	batch         int
	pollInterval  time.Duration
	maxDeliveries int
	retryDelay    time.Duration
	maxPending    int
	shardRefresh  time.Duration
	logger        *slog.Logger
	// Publisher
	partitionKey func(ctx context.Context, body []byte) string

	consumerOnly, publisherOnly []string // the options given, by name
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.batch == 0 {
		c.batch = DefaultBatch
	}
	if c.pollInterval == 0 {
		c.pollInterval = DefaultPollInterval
	}
	if c.maxDeliveries == 0 {
		c.maxDeliveries = DefaultMaxDeliveries
	}
	if c.retryDelay == 0 {
		c.retryDelay = DefaultRetryDelay
	}
	if c.maxPending == 0 {
		c.maxPending = DefaultMaxPending
	}
	if c.shardRefresh == 0 {
		c.shardRefresh = DefaultShardRefresh
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

func consumerOption(name string, set func(*config)) Option {
	return func(c *config) { c.consumerOnly = append(c.consumerOnly, name); set(c) }
}

// WithClock sets a Consumer's time source for the due times of deferred
// and failed records, and for WithShardRefresh. Default time.Now, also for
// nil.
func WithClock(now func() time.Time) Option {
	return consumerOption("WithClock", func(c *config) { c.now = now })
}

// WithBatch sets how many records a Consumer reads from a shard at a time
// (GetRecords' Limit, at most 10,000). Default [DefaultBatch].
func WithBatch(n int) Option {
	return consumerOption("WithBatch", func(c *config) { c.batch = n })
}

// WithPollInterval sets how long Consumer.Run waits between two rounds of
// reads. Kinesis serves five GetRecords a second per shard, shared by every
// application reading the stream; the interval also bounds how late a
// deferred record is handled and how long Run takes to return once its
// context is done. Default [DefaultPollInterval].
func WithPollInterval(d time.Duration) Option {
	return consumerOption("WithPollInterval", func(c *config) { c.pollInterval = d })
}

// WithMaxDeliveries sets how many deliveries a failing record gets before
// a Consumer dead-letters it with the reason "max_deliveries". Deferrals
// never dead-letter a record. Default [DefaultMaxDeliveries].
func WithMaxDeliveries(n int) Option {
	return consumerOption("WithMaxDeliveries", func(c *config) { c.maxDeliveries = n })
}

// WithRetryDelay sets how long a failed record waits before a Consumer
// delivers it again, and how long a dead letter that could not be written
// waits before the Consumer writes it again. Default [DefaultRetryDelay].
func WithRetryDelay(d time.Duration) Option {
	return consumerOption("WithRetryDelay", func(c *config) { c.retryDelay = d })
}

// WithMaxPending sets how many unsettled records (deferred, failed, or
// read and not yet handled) a Consumer keeps per shard. A shard that has
// as many reads no more until some are settled: its reading pauses until
// the earliest is due. Default [DefaultMaxPending].
func WithMaxPending(n int) Option {
	return consumerOption("WithMaxPending", func(c *config) { c.maxPending = n })
}

// WithShardRefresh sets how often a Consumer lists the stream's shards
// again, to find those a reshard made; it also lists them when a shard it
// reads ends. Default [DefaultShardRefresh].
func WithShardRefresh(d time.Duration) Option {
	return consumerOption("WithShardRefresh", func(c *config) { c.shardRefresh = d })
}

// WithLogger sets where a Consumer reports the Kinesis errors it retries
// after, the dead letters it could not write and the panics of its
// handler. Default, also for nil: slog.Default.
func WithLogger(l *slog.Logger) Option {
	return consumerOption("WithLogger", func(c *config) { c.logger = l })
}

// WithPartitionKey sets how a Publisher chooses a message's partition key
// (Kinesis puts the records of one key on one shard, in order): key
// returns it, from the context of Publish and the body. Default: the ID
// of the context's tenant (tenant.FromContext), so that a tenant's
// messages stay in order and tenants spread over the shards. A key that
// is empty fails the Publish.
func WithPartitionKey(key func(ctx context.Context, body []byte) string) Option {
	return func(c *config) {
		c.publisherOnly = append(c.publisherOnly, "WithPartitionKey")
		c.partitionKey = key
	}
}
