package redisstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/recovered"
	"github.com/tenancykit/tenancy/message"
)

// Consumer reads a stream as one consumer of a group and hands each entry
// to a message.Handler: one at a time, or up to [WithConcurrency] at once.
// Run several Consumers (with names of their own) for more processes. Its
// methods must not be called concurrently with each other.
type Consumer struct {
	client redis.UniversalClient
	stream string
	group  string
	name   string
	due    string // sorted set of deferred entries by due time, unix ms
	cfg    config
	cursor string // of XAUTOCLAIM

	// With WithConcurrency above 1, the handlers running in goroutines.
	running sync.WaitGroup
	freed   chan struct{} // a handler returned and was settled (capacity 1)
	mu      sync.Mutex
	busy    int   // handlers running
	err     error // the first error settling an entry, not yet returned
}

// NewConsumer returns consumer name of group on stream, creating the
// stream and the group when they do not exist (a new group starts at the
// stream's first entry). It takes [WithClock], [WithBatch], [WithBlock],
// [WithClaimAfter], [WithMaxDeliveries], [WithRetryDelay],
// [WithDeadLetterStream], [WithLogger] and [WithConcurrency].
func NewConsumer(ctx context.Context, client redis.UniversalClient, stream, group, name string, opts ...Option) (*Consumer, error) {
	if client == nil || stream == "" || group == "" || name == "" {
		return nil, errors.New("redisstream: NewConsumer needs a client, a stream, a group and a consumer name")
	}
	c := newConfig(opts)
	switch {
	case c.batch < 0, c.block < 0, c.claimAfter < 0, c.maxDeliveries < 0, c.retryDelay < 0, c.concurrency < 0:
		return nil, errors.New("redisstream: WithBatch, WithBlock, WithClaimAfter, WithMaxDeliveries, WithRetryDelay and WithConcurrency need positive values")
	case c.maxLen != 0:
		return nil, errors.New("redisstream: WithMaxLen applies to NewPublisher")
	}
	if c.deadLetter == "" {
		c.deadLetter = stream + ":dead"
	}
	err := client.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil, fmt.Errorf("redisstream: XGROUP CREATE %s %s: %w", stream, group, err)
	}
	return &Consumer{
		client: client, stream: stream, group: group, name: name,
		due: stream + ":" + group + ":deferred", cfg: c, cursor: "0-0",
		freed: make(chan struct{}, 1),
	}, nil
}

// Poll handles what is there to handle now, without waiting: the
// deferred and failed entries that are due, a batch of entries other
// consumers left unsettled for WithClaimAfter, and a batch of new
// entries. It returns how many messages it handed to h, once each is
// settled.
func (c *Consumer) Poll(ctx context.Context, h message.Handler) (int, error) {
	n, err := c.poll(ctx, h, -1, false)
	c.running.Wait()
	if serr := c.takeErr(); err == nil {
		err = serr
	}
	return n, err
}

// Run polls until ctx is done, waiting up to WithBlock for new entries
// when there is nothing to do; with WithConcurrency, it reads as soon as a
// handler is free, as many entries as there are free handlers. A Redis
// error is reported to WithLogger and retried after WithBlock. It returns
// nil once ctx is done and every entry it handed over is settled.
func (c *Consumer) Run(ctx context.Context, h message.Handler) error {
	// A consumer that is stopping still settles what it handed over.
	defer c.running.Wait()
	for ctx.Err() == nil {
		if c.free() == 0 {
			select {
			case <-ctx.Done():
			case <-c.freed:
			}
			continue
		}
		_, err := c.poll(ctx, h, c.cfg.block, true)
		if serr := c.takeErr(); err == nil {
			err = serr
		}
		if err != nil && ctx.Err() == nil {
			c.cfg.logger.Warn("redisstream: polling failed; retrying", "stream", c.stream, "group", c.group, "error", err.Error())
			t := time.NewTimer(c.cfg.block)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// poll is one round; block < 0 reads new entries without waiting. Each
// step reads up to WithBatch entries; in Run (room) with WithConcurrency,
// no more than there are free handlers, and none when there are none.
func (c *Consumer) poll(ctx context.Context, h message.Handler, block time.Duration, room bool) (int, error) {
	limit := func() int {
		if !room || c.cfg.concurrency == 1 {
			return c.cfg.batch
		}
		return min(c.cfg.batch, c.free())
	}
	handled := 0
	if n := limit(); n > 0 {
		due, err := c.claimDue(ctx, n)
		if err != nil {
			return handled, err
		}
		if err := c.handleAll(ctx, h, due, true, &handled); err != nil {
			return handled, err
		}
	}
	if n := limit(); n > 0 {
		abandoned, err := c.claimAbandoned(ctx, n)
		if err != nil {
			return handled, err
		}
		if err := c.handleAll(ctx, h, abandoned, true, &handled); err != nil {
			return handled, err
		}
	}
	if handled > 0 {
		block = -1 // there may be more due: do not wait for new entries
	}
	n := limit()
	if n == 0 {
		return handled, nil
	}
	streams, err := c.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.group, Consumer: c.name, Streams: []string{c.stream, ">"}, Count: int64(n), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return handled, nil
	}
	if err != nil {
		return handled, fmt.Errorf("redisstream: XREADGROUP %s: %w", c.stream, err)
	}
	for _, s := range streams {
		if err := c.handleAll(ctx, h, s.Messages, false, &handled); err != nil {
			return handled, err
		}
	}
	return handled, nil
}

// claimDue claims the deferred and failed entries whose time has come.
// Each is taken off the sorted set first: of consumers polling at once,
// the one whose ZREM removed it delivers it.
func (c *Consumer) claimDue(ctx context.Context, n int) ([]redis.XMessage, error) {
	now := strconv.FormatInt(c.cfg.now().UnixMilli(), 10)
	ids, err := c.client.ZRangeByScore(ctx, c.due, &redis.ZRangeBy{Min: "-inf", Max: now, Count: int64(n)}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstream: ZRANGEBYSCORE %s: %w", c.due, err)
	}
	return c.take(ctx, ids)
}

// take removes ids from the sorted set and claims those this consumer
// removed.
func (c *Consumer) take(ctx context.Context, ids []string) ([]redis.XMessage, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var won []string
	for _, id := range ids {
		n, err := c.client.ZRem(ctx, c.due, id).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstream: ZREM %s: %w", c.due, err)
		}
		if n == 1 {
			won = append(won, id)
		}
	}
	if len(won) == 0 {
		return nil, nil
	}
	msgs, err := c.client.XClaim(ctx, &redis.XClaimArgs{Stream: c.stream, Group: c.group, Consumer: c.name, Messages: won}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstream: XCLAIM %s: %w", c.stream, err)
	}
	return msgs, nil
}

// claimAbandoned claims entries left unsettled for WithClaimAfter, except
// those deferred to a later time (their consumer left them pending on
// purpose, and the sorted set brings them back).
func (c *Consumer) claimAbandoned(ctx context.Context, n int) ([]redis.XMessage, error) {
	ids, next, err := c.client.XAutoClaimJustID(ctx, &redis.XAutoClaimArgs{
		Stream: c.stream, Group: c.group, Consumer: c.name, MinIdle: c.cfg.claimAfter, Start: c.cursor, Count: int64(n),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstream: XAUTOCLAIM %s: %w", c.stream, err)
	}
	c.cursor = next
	if len(ids) == 0 {
		return nil, nil
	}
	now := float64(c.cfg.now().UnixMilli())
	scores, err := c.client.ZMScore(ctx, c.due, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstream: ZMSCORE %s: %w", c.due, err)
	}
	var free, due []string
	for i, id := range ids {
		switch {
		case scores[i] == 0: // not deferred (ZMSCORE answers 0 for none)
			free = append(free, id)
		case scores[i] <= now:
			due = append(due, id)
		}
	}
	msgs, err := c.take(ctx, due)
	if err != nil || len(free) == 0 {
		return msgs, err
	}
	more, err := c.client.XClaim(ctx, &redis.XClaimArgs{Stream: c.stream, Group: c.group, Consumer: c.name, Messages: free}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstream: XCLAIM %s: %w", c.stream, err)
	}
	return append(msgs, more...), nil
}

// handleAll hands each of msgs to h and settles it: in turn, or with
// WithConcurrency in a goroutine each, once a handler is free. claimed
// says msgs were claimed, so their delivery counts are asked of Redis; new
// entries are on their first.
func (c *Consumer) handleAll(ctx context.Context, h message.Handler, msgs []redis.XMessage, claimed bool, handled *int) error {
	var counts map[string]int
	if claimed && len(msgs) > 0 {
		var err error
		if counts, err = c.deliveries(ctx, msgs); err != nil {
			return err
		}
	}
	for _, xm := range msgs {
		if xm.Values == nil { // deleted (trimmed) while pending
			if err := c.client.XAck(ctx, c.stream, c.group, xm.ID).Err(); err != nil {
				return fmt.Errorf("redisstream: XACK %s: %w", c.stream, err)
			}
			continue
		}
		m := toMessage(c.stream, xm)
		m.Deliveries = 1
		if claimed {
			m.Deliveries = counts[xm.ID]
		}
		*handled++
		if c.cfg.concurrency > 1 {
			c.acquire()
			c.running.Go(func() {
				defer c.release()
				err := c.handle(ctx, h, m)
				if err := c.settle(context.WithoutCancel(ctx), m, err); err != nil {
					c.fail(err) // the entry stays pending: claimed again after WithClaimAfter
				}
			})
			continue
		}
		err := c.handle(ctx, h, m)
		// A consumer that is stopping still settles what it handled.
		if err := c.settle(context.WithoutCancel(ctx), m, err); err != nil {
			return err
		}
	}
	return nil
}

// handle hands m to h. A handler that panics fails m (retried, then
// dead-lettered "max_deliveries"), and the panic is logged: it stops
// neither the consumer nor the process.
func (c *Consumer) handle(ctx context.Context, h message.Handler, m *message.Message) error {
	err := recovered.Handle(ctx, h, m)
	if pe, ok := err.(*recovered.PanicError); ok {
		c.cfg.logger.Error("redisstream: the handler panicked; the message fails", "stream", c.stream, "id", m.ID,
			"deliveries", m.Deliveries, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
	return err
}

// free returns how many more entries may be handed over now.
func (c *Consumer) free() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.concurrency - c.busy
}

// acquire waits for a free handler and takes it.
func (c *Consumer) acquire() {
	for {
		c.mu.Lock()
		if c.busy < c.cfg.concurrency {
			c.busy++
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		<-c.freed
	}
}

// release gives back the handler of a settled entry.
func (c *Consumer) release() {
	c.mu.Lock()
	c.busy--
	c.mu.Unlock()
	select {
	case c.freed <- struct{}{}:
	default:
	}
}

// fail keeps the first error of a handler's goroutine, for Run or Poll to
// return.
func (c *Consumer) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// takeErr returns the error fail kept, and forgets it.
func (c *Consumer) takeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.err
	c.err = nil
	return err
}

// deliveries returns the delivery counts of msgs, by entry ID.
func (c *Consumer) deliveries(ctx context.Context, msgs []redis.XMessage) (map[string]int, error) {
	pipe := c.client.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: c.stream, Group: c.group, Start: m.ID, End: m.ID, Count: 1})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redisstream: XPENDING %s: %w", c.stream, err)
	}
	counts := make(map[string]int, len(msgs))
	for _, cmd := range cmds {
		for _, p := range cmd.Val() {
			counts[p.ID] = int(p.RetryCount)
		}
	}
	return counts, nil
}

// toMessage reads an entry: its body, and its attributes.
func toMessage(stream string, xm redis.XMessage) *message.Message {
	m := &message.Message{ID: xm.ID, Source: stream}
	for k, v := range xm.Values {
		s, _ := v.(string)
		switch {
		case k == fieldBody:
			m.Body = []byte(s)
		case strings.HasPrefix(k, attrPrefix):
			if m.Attributes == nil {
				m.Attributes = make(map[string]string)
			}
			m.Attributes[k[len(attrPrefix):]] = s
		}
	}
	return m
}

// settle acts on the outcome of m's delivery.
func (c *Consumer) settle(ctx context.Context, m *message.Message, err error) error {
	outcome, after, reason := message.OutcomeOf(err)
	switch outcome {
	case message.Acked:
		return c.ack(ctx, m.ID)
	case message.Deferred:
		return c.later(ctx, m.ID, after)
	case message.Failed:
		if m.Deliveries < c.cfg.maxDeliveries {
			return c.later(ctx, m.ID, c.cfg.retryDelay)
		}
		reason = "max_deliveries"
	}
	more := []any{fieldID, m.ID, fieldSource, m.Source, fieldReason, reason, fieldCount, m.Deliveries}
	if err := c.client.XAdd(ctx, &redis.XAddArgs{Stream: c.cfg.deadLetter, Values: entryValues(m.Body, m.Attributes, more)}).Err(); err != nil {
		return fmt.Errorf("redisstream: XADD %s: %w", c.cfg.deadLetter, err)
	}
	return c.ack(ctx, m.ID)
}

func (c *Consumer) ack(ctx context.Context, id string) error {
	if err := c.client.XAck(ctx, c.stream, c.group, id).Err(); err != nil {
		return fmt.Errorf("redisstream: XACK %s: %w", c.stream, err)
	}
	return nil
}

// later leaves the entry pending, due after d.
func (c *Consumer) later(ctx context.Context, id string, d time.Duration) error {
	at := float64(c.cfg.now().Add(d).UnixMilli())
	if err := c.client.ZAdd(ctx, c.due, redis.Z{Score: at, Member: id}).Err(); err != nil {
		return fmt.Errorf("redisstream: ZADD %s: %w", c.due, err)
	}
	return nil
}
