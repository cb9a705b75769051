package kinesissink

import (
	"context"
	"errors"
	"time"
)

// Option configures a [Sink].
type Option func(*config)

type config struct {
	streamARN  string
	attempts   int
	minBackoff time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	sleep      func(context.Context, time.Duration) error
}

// Defaults of the options.
const (
	// DefaultAttempts is how many PutRecords calls a record gets within one
	// Write: the first and two retries.
	DefaultAttempts   = 3
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = time.Second
	// DefaultTimeout bounds one PutRecords call: 5 MiB sent and answered,
	// with the SDK's own retries.
	DefaultTimeout = 10 * time.Second
)

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	// A zero option means the default; negative values are left for
	// validate to refuse.
	if c.attempts == 0 {
		c.attempts = DefaultAttempts
	}
	if c.minBackoff == 0 && c.maxBackoff == 0 {
		c.minBackoff, c.maxBackoff = DefaultMinBackoff, DefaultMaxBackoff
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.sleep == nil {
		c.sleep = sleep
	}
	return c
}

func (c *config) validate() error {
	switch {
	case c.attempts < 1:
		return errors.New("kinesissink: WithAttempts needs at least 1")
	case c.minBackoff <= 0 || c.maxBackoff < c.minBackoff:
		return errors.New("kinesissink: WithBackoff needs 0 < min <= max")
	case c.timeout < 0:
		return errors.New("kinesissink: WithTimeout needs a positive duration")
	}
	return nil
}

// WithStreamARN names the stream by its ARN, which AWS recommends and which
// a stream in another account needs. The stream name given to [New] may
// then be empty; when it is not, it must be the ARN's. Default (also for
// ""): the stream is named by its name only.
func WithStreamARN(arn string) Option { return func(c *config) { c.streamARN = arn } }

// WithAttempts sets how many PutRecords calls a record gets within one
// Write, the first included; 1 retries nothing. Default (also for 0)
// [DefaultAttempts].
// The SDK's own retryer, which retries whole calls that fail, comes on top
// of this; records still undelivered after the last attempt are reported
// to the [meter.Recorder], which tries them again later.
func WithAttempts(n int) Option { return func(c *config) { c.attempts = n } }

// WithBackoff sets the wait before each retry within a Write, doubling from
// min to max, of which a random half is taken off so that replicas
// throttled on the same shard do not retry in step. Default (also for 0,
// 0) [DefaultMinBackoff] to [DefaultMaxBackoff].
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) { c.minBackoff, c.maxBackoff = min, max }
}

// WithTimeout bounds each PutRecords call, the SDK's retries of it
// included: a call Kinesis has not answered by then fails, and its records
// are sent again at the next attempt. Without it, a Write to an endpoint
// that accepts connections and never answers (a hung host, a network that
// drops packets) would wait as long as ctx lets it, since the SDK's HTTP
// client sets no overall timeout. Default (also for 0) [DefaultTimeout].
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithSleep replaces how the sink waits before a retry: sleep must wait d,
// or less, and return ctx's error should ctx be done first. Tests pass one
// that returns at once. Default (also for nil): a timer that also watches
// ctx.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *config) { c.sleep = sleep }
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
