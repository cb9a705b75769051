package sqsqueue

import (
	"errors"
	"log/slog"
	"time"
)

// Defaults of the options, in one place.
const (
	DefaultBatch         = MaxBatch
	DefaultWait          = MaxWait
	DefaultConcurrency   = 1
	DefaultVisibility    = 30 * time.Second
	DefaultMaxDeliveries = 5
	DefaultRetryDelay    = time.Second
)

// Option configures a [Worker] or a [Publisher]; each says which. A nil
// Option is ignored, and an option given its zero value leaves the
// default.
type Option func(*config)

type config struct {
	now           func() time.Time
	batch         int
	wait          time.Duration
	concurrency   int
	visibility    time.Duration
	maxDeliveries int
	retryDelay    time.Duration
	deadLetter    string
	source        string
	logger        *slog.Logger
	dedup         func(body []byte, attrs map[string]string) string
	workerOnly    bool // a Worker option was given
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
	if c.wait == 0 {
		c.wait = DefaultWait
	}
	if c.concurrency == 0 {
		c.concurrency = DefaultConcurrency
	}
	if c.visibility == 0 {
		c.visibility = DefaultVisibility
	}
	if c.maxDeliveries == 0 {
		c.maxDeliveries = DefaultMaxDeliveries
	}
	if c.retryDelay == 0 {
		c.retryDelay = DefaultRetryDelay
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

func (c *config) onlyPublisher() error {
	if c.workerOnly {
		return errors.New("sqsqueue: NewPublisher takes WithDeduplicationID only; the other options apply to NewWorker")
	}
	return nil
}

func (c *config) onlyWorker() error {
	if c.dedup != nil {
		return errors.New("sqsqueue: WithDeduplicationID applies to NewPublisher")
	}
	return nil
}

func worker(f func(*config)) Option {
	return func(c *config) { c.workerOnly = true; f(c) }
}

// WithClock sets a Worker's time source, by which it stops extending the
// visibility of a message 12 hours after receiving it. Default time.Now,
// also for nil. SQS keeps visibility timeouts by its own clock.
func WithClock(now func() time.Time) Option { return worker(func(c *config) { c.now = now }) }

// WithBatch sets how many messages a Worker asks for in one ReceiveMessage
// (MaxNumberOfMessages), 1 to [MaxBatch]. Default [DefaultBatch].
func WithBatch(n int) Option { return worker(func(c *config) { c.batch = n }) }

// WithWait sets how long a ReceiveMessage of Worker.Run waits for
// messages when the queue has none (WaitTimeSeconds, a long poll), 1 s to
// [MaxWait] in whole seconds; it also bounds how long Run takes to return
// once its context is done. Worker.Poll does not wait. Default
// [DefaultWait].
func WithWait(d time.Duration) Option { return worker(func(c *config) { c.wait = d }) }

// WithConcurrency sets how many messages of a batch a Worker handles at
// once. Default [DefaultConcurrency]: one after the other. Run several
// Workers for more than a batch at once.
func WithConcurrency(n int) Option { return worker(func(c *config) { c.concurrency = n }) }

// WithVisibilityTimeout sets the visibility timeout a Worker asks for in
// ReceiveMessage, in whole seconds (rounded up), at least 2 s: how long a
// received message stays hidden from other consumers. While a handler
// runs, the Worker extends it every half of it (a heartbeat), so a handler
// may take longer; a worker that stops or crashes leaves its unsettled
// messages to come back after it. Default [DefaultVisibility].
func WithVisibilityTimeout(d time.Duration) Option {
	return worker(func(c *config) { c.visibility = d })
}

// WithMaxDeliveries sets how many deliveries (ApproximateReceiveCount) a
// failing message gets before a Worker dead-letters it with the reason
// "max_deliveries". Deferrals never dead-letter a message, but SQS counts
// every receive, deferred ones too. Default [DefaultMaxDeliveries].
func WithMaxDeliveries(n int) Option { return worker(func(c *config) { c.maxDeliveries = n }) }

// WithRetryDelay sets how long a failed message stays hidden before SQS
// delivers it again (its visibility timeout, in whole seconds rounded up).
// Default [DefaultRetryDelay].
func WithRetryDelay(d time.Duration) Option { return worker(func(c *config) { c.retryDelay = d }) }

// WithDeadLetterQueue sets the URL of the queue a Worker sends rejected
// messages, and failed ones past WithMaxDeliveries, to. Required.
func WithDeadLetterQueue(url string) Option { return worker(func(c *config) { c.deadLetter = url }) }

// WithSource sets the Message.Source of a Worker's messages, by which a
// stamp's replay cache tells queues apart. Default: the queue's name.
func WithSource(name string) Option { return worker(func(c *config) { c.source = name }) }

// WithLogger sets where a Worker reports the SQS errors it leaves to
// redelivery. Default, also for nil: slog.Default.
func WithLogger(l *slog.Logger) Option { return worker(func(c *config) { c.logger = l }) }

// WithDeduplicationID sets how a Publisher names each message for a FIFO
// queue's deduplication (MessageDeduplicationId): SQS accepts one message
// per ID within five minutes. An empty ID, or the default (none), leaves it
// to the queue's content-based deduplication, without which SQS refuses the
// message. Stamped messages differ by their stamp, so content-based
// deduplication drops only a resend of the same stamped message. Ignored on
// standard queues.
func WithDeduplicationID(f func(body []byte, attrs map[string]string) string) Option {
	return func(c *config) { c.dedup = f }
}
