package redisstream

import (
	"log/slog"
	"time"
)

// Defaults of the options, in one place.
const (
	DefaultBatch         = 10
	DefaultBlock         = time.Second
	DefaultClaimAfter    = time.Minute
	DefaultMaxDeliveries = 5
	DefaultRetryDelay    = time.Second
)

// Option configures a [Consumer] or a [Publisher]; each says which. A nil
// Option is ignored, and an option given its zero value leaves the
// default.
type Option func(*config)

type config struct {
	now           func() time.Time
	batch         int
	block         time.Duration
	claimAfter    time.Duration
	maxDeliveries int
	retryDelay    time.Duration
	deadLetter    string
	logger        *slog.Logger
	maxLen        int64
	concurrency   int
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
	if c.block == 0 {
		c.block = DefaultBlock
	}
	if c.claimAfter == 0 {
		c.claimAfter = DefaultClaimAfter
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
	if c.concurrency == 0 {
		c.concurrency = 1
	}
	return c
}

// WithClock sets a Consumer's time source for due times of deferred and
// failed messages. Default time.Now, also for nil. Redis measures how long
// an entry was idle ([WithClaimAfter]) by its own clock.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithBatch sets how many entries a Consumer reads, and claims, at a time.
// Default [DefaultBatch].
func WithBatch(n int) Option { return func(c *config) { c.batch = n } }

// WithBlock sets how long Consumer.Run waits for new entries in one read
// (XREADGROUP BLOCK), which bounds how late a deferred message is handled
// and how long Run takes to return once its context is done. Default
// [DefaultBlock].
func WithBlock(d time.Duration) Option { return func(c *config) { c.block = d } }

// WithClaimAfter sets how long an entry another consumer read stays
// unsettled before a Consumer claims it (XAUTOCLAIM's min-idle-time): set
// it above the longest a handler takes. Default [DefaultClaimAfter].
func WithClaimAfter(d time.Duration) Option { return func(c *config) { c.claimAfter = d } }

// WithMaxDeliveries sets how many deliveries a failing message gets before
// a Consumer dead-letters it with the reason "max_deliveries". Deferrals
// never dead-letter a message. Default [DefaultMaxDeliveries].
func WithMaxDeliveries(n int) Option { return func(c *config) { c.maxDeliveries = n } }

// WithRetryDelay sets how long a failed message waits before a Consumer
// delivers it again. Default [DefaultRetryDelay].
func WithRetryDelay(d time.Duration) Option { return func(c *config) { c.retryDelay = d } }

// WithDeadLetterStream names the stream a Consumer adds rejected messages
// to. Default: the stream's name + ":dead".
func WithDeadLetterStream(name string) Option { return func(c *config) { c.deadLetter = name } }

// WithLogger sets where a Consumer reports the Redis errors Run retries
// after and the panics of its handler. Default, also for nil: slog.Default.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithConcurrency lets a Consumer handle up to n entries at once. It reads
// and claims no more entries than it has handlers free for (and at most
// WithBatch at a time), hands each to the handler in a goroutine of its
// own and settles each as its handler returns, in whatever order they
// return; Run reads again as soon as a handler is free. Poll returns once
// every entry it handed over is settled. Default 1: one entry at a time,
// in the order read.
//
// A throttle.FairShare needs more entries at once than it has workers:
// give n above its workers and its waiting bound together (10 × workers
// with the default bound), so that the entries beyond them are deferred
// and the consumer reads past a tenant's backlog. An entry's handling then
// includes its wait for a worker: keep WithClaimAfter above it.
func WithConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// WithMaxLen trims a Publisher's stream to about n entries as it adds
// (XADD MAXLEN ~ n): entries past it are gone, read or not. Default: no
// trimming.
func WithMaxLen(n int64) Option { return func(c *config) { c.maxLen = n } }
