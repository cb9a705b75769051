package tenancykafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenancykit/tenancy/internal/recovered"
	"github.com/tenancykit/tenancy/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The headers a Consumer adds to a dead-lettered record, beside the
// record's own.
const (
	// HeaderReason: why the record was dead-lettered, as
	// message.OutcomeOf gives it ("stamp:signature",
	// "handler:invalid_order"), or "max_deliveries".
	HeaderReason = "dead-letter-reason"
	// HeaderID: the record's message ID, topic/partition/offset.
	HeaderID = "dead-letter-id"
	// HeaderDeliveries: how many times the Consumer delivered it.
	HeaderDeliveries = "dead-letter-deliveries"
)

// commitTimeout bounds one commit of offsets, and the last one of a
// Consumer that is stopping.
const commitTimeout = 10 * time.Second

// ErrClosed is what Run returns once Close was called.
var ErrClosed = errors.New("tenancykafka: the consumer is closed")

// Consumer consumes a topic as a member of a consumer group and hands
// each record, as a message.Message, to a message.Handler: the records
// of a partition one at a time in offset order, the partitions
// concurrently. See the package documentation for what it does with each
// outcome and what it promises.
type Consumer struct {
	client *kgo.Client
	topic  string
	cfg    config

	running atomic.Bool

	mu    sync.Mutex // parts, and each partition between rounds
	parts map[int32]*partition
	round uint64
}

// NewConsumer returns a member of group consuming topic from the Kafka
// cluster of brokers (host:port seeds), through a franz-go client of its
// own. It takes [WithClock], [WithBatch], [WithBlock], [WithMaxDeliveries],
// [WithMaxPending], [WithRetryDelay], [WithDeadLetterTopic], [WithLogger]
// and [WithClientOptions]. It joins the group when Run first polls; Close
// it to leave.
func NewConsumer(brokers []string, topic, group string, opts ...Option) (*Consumer, error) {
	if len(brokers) == 0 || topic == "" || group == "" {
		return nil, errors.New("tenancykafka: NewConsumer needs the brokers, a topic and a group")
	}
	cfg := newConfig(opts)
	switch {
	case cfg.key != nil:
		return nil, errors.New("tenancykafka: WithKey applies to NewProducer")
	case cfg.batch < 0, cfg.block < 0, cfg.maxDeliveries < 0, cfg.maxPending < 0, cfg.retryDelay < 0:
		return nil, errors.New("tenancykafka: WithBatch, WithBlock, WithMaxDeliveries, WithMaxPending and WithRetryDelay need positive values")
	case cfg.deadLetter == topic:
		return nil, errors.New("tenancykafka: WithDeadLetterTopic names the consumed topic: dead letters would be consumed again")
	}
	cfg.consumerDefaults(topic)
	c := &Consumer{topic: topic, cfg: cfg, parts: map[int32]*partition{}}
	kopts := append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, cfg.clientOpts...)
	kopts = append(kopts,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	)
	client, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("tenancykafka: %w", err)
	}
	c.client = client
	return c, nil
}

// Run consumes until ctx is done, then lets the handlers in flight return,
// settles what they returned, commits the offsets of what is settled and
// returns nil; it returns ErrClosed once Close was called. Kafka errors are
// reported to WithLogger and retried after WithBlock. Run must not be
// called again while it runs.
func (c *Consumer) Run(ctx context.Context, h message.Handler) error {
	if h == nil {
		return errors.New("tenancykafka: Run needs a handler")
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("tenancykafka: Run is already running")
	}
	defer c.running.Store(false)
	for ctx.Err() == nil {
		closed, failed := c.poll(ctx, h)
		if closed {
			return ErrClosed
		}
		if failed {
			t := time.NewTimer(c.cfg.block)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	c.mu.Lock()
	c.commit(ctx, c.all())
	c.mu.Unlock()
	return nil
}

// Close commits the offsets of the records settled, leaves the group
// (its partitions go to the other members, from the committed offsets)
// and closes the client. Cancel Run's context and let Run return first;
// a Run still running returns ErrClosed.
func (c *Consumer) Close() {
	c.mu.Lock()
	c.commit(context.Background(), c.all())
	c.mu.Unlock()
	c.client.CloseAllowingRebalance()
}

// poll is one round: take the records the client fetched (waiting up to
// WithBlock when there is nothing to do), hand over what is due in each
// partition, concurrently, commit what is settled. Rebalances wait for the
// round to end.
func (c *Consumer) poll(ctx context.Context, h message.Handler) (closed, failed bool) {
	c.mu.Lock()
	busy := false
	now := c.cfg.now()
	for _, p := range c.parts {
		if p.hasWork(now, c.round+1) {
			busy = true
			break
		}
	}
	c.mu.Unlock()

	var fetches kgo.Fetches
	if busy {
		//lint:ignore SA1012 a nil context is how kgo returns what it has buffered without waiting
		fetches = c.client.PollRecords(nil, c.cfg.batch)
	} else {
		wait, cancel := context.WithTimeout(ctx, c.cfg.block)
		fetches = c.client.PollRecords(wait, c.cfg.batch)
		cancel()
	}
	defer c.client.AllowRebalance()
	if fetches.IsClientClosed() {
		return true, false
	}
	fetches.EachError(func(topic string, part int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		failed = true
		c.cfg.logger.Warn("tenancykafka: fetching failed; retrying", "topic", topic, "partition", part, "error", err.Error())
	})

	c.mu.Lock()
	defer c.mu.Unlock() // before AllowRebalance: the callbacks take mu
	fetches.EachPartition(func(f kgo.FetchTopicPartition) {
		if len(f.Records) == 0 || f.Topic != c.topic {
			return
		}
		p := c.parts[f.Partition]
		if p == nil {
			p = newPartition(c.topic, f.Partition, c.cfg.maxPending)
			c.parts[f.Partition] = p
		}
		p.backlog = append(p.backlog, f.Records...)
	})
	c.round++
	round, now := c.round, c.cfg.now()
	var wg sync.WaitGroup
	for _, p := range c.parts {
		if p.hasWork(now, round) {
			wg.Go(func() { c.handle(ctx, h, p, round) })
		}
	}
	wg.Wait()
	c.commit(ctx, c.all())
	c.pause()
	return false, failed
}

// handle hands over, one at a time, what partition p has due: the waiting
// records that are due (in offset order), then records of the backlog
// while fewer than WithMaxPending wait. A record is handed over at most
// once per round, and none once ctx is done.
func (c *Consumer) handle(ctx context.Context, h message.Handler, p *partition, round uint64) {
	for ctx.Err() == nil {
		// The delivery's time: what is due, and when what it defers or
		// fails is due again.
		now := c.cfg.now()
		var e *entry
		if i := p.eligible(now, round); i >= 0 {
			e = p.waiting[i]
		} else if len(p.backlog) > 0 && len(p.waiting) < p.max {
			var held bool
			if e, held = p.take(); held {
				p.wait(e, time.Time{}) // behind an unsettled record of its key
				continue
			}
		} else {
			return
		}
		e.deliveries++
		e.round = round
		m := toMessage(e)
		c.settle(ctx, p, e, m, now, c.handleMessage(ctx, h, m))
	}
}

// handleMessage hands m to h. A handler that panics fails m (retried,
// then dead-lettered "max_deliveries"), and the panic is logged: it stops
// neither the consumer nor the process.
func (c *Consumer) handleMessage(ctx context.Context, h message.Handler, m *message.Message) error {
	err := recovered.Handle(ctx, h, m)
	if pe, ok := err.(*recovered.PanicError); ok {
		c.cfg.logger.Error("tenancykafka: the handler panicked; the message fails", "topic", c.topic, "id", m.ID,
			"deliveries", m.Deliveries, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
	return err
}

// settle acts on the outcome of e's delivery.
func (c *Consumer) settle(ctx context.Context, p *partition, e *entry, m *message.Message, now time.Time, err error) {
	outcome, after, reason := message.OutcomeOf(err)
	switch outcome {
	case message.Acked:
		p.settled(e)
		return
	case message.Deferred:
		p.wait(e, now.Add(after))
		return
	case message.Failed:
		if e.deliveries < c.cfg.maxDeliveries {
			p.wait(e, now.Add(c.cfg.retryDelay))
			return
		}
		reason = "max_deliveries"
	}
	if err := c.deadLetter(ctx, e, m, reason); err != nil {
		// Not settled: it stays before the committed offset and is
		// delivered again.
		c.cfg.logger.Warn("tenancykafka: dead-lettering failed; delivering the record again later",
			"topic", c.topic, "id", m.ID, "dead_letter_topic", c.cfg.deadLetter, "reason", reason, "error", err.Error())
		p.wait(e, now.Add(c.cfg.retryDelay))
		return
	}
	p.settled(e)
}

// deadLetter produces e's record to the dead-letter topic, with its key,
// value and headers, and the reason, ID and count: the consumer's alone,
// the record's own headers of those names dropped.
func (c *Consumer) deadLetter(ctx context.Context, e *entry, m *message.Message, reason string) error {
	r := e.rec
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+3)
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderReason, HeaderID, HeaderDeliveries:
			// The record's own, forged or of an earlier dead letter: a
			// reader of the first would take them for the consumer's.
			continue
		}
		hs = append(hs, h)
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderID, Value: []byte(m.ID)},
		kgo.RecordHeader{Key: HeaderDeliveries, Value: []byte(strconv.Itoa(e.deliveries))},
	)
	dead := &kgo.Record{Topic: c.cfg.deadLetter, Key: r.Key, Value: r.Value, Headers: hs}
	return c.client.ProduceSync(ctx, dead).FirstErr()
}

// all returns the partitions held. Call with mu held.
func (c *Consumer) all() []*partition {
	ps := make([]*partition, 0, len(c.parts))
	for _, p := range c.parts {
		ps = append(ps, p)
	}
	return ps
}

// commit commits, for each of ps whose commit point moved, the offset of
// its oldest unsettled record (or the one after the last record taken).
// A failed commit is reported and tried again after the next round: the
// records past the committed offset are delivered again to whoever
// consumes the partition next. Call with mu held.
func (c *Consumer) commit(ctx context.Context, ps []*partition) {
	offsets := map[int32]kgo.EpochOffset{}
	for _, p := range ps {
		if eo, ok := p.commitPoint(); ok && eo.Offset != p.committed {
			offsets[p.id] = eo
		}
	}
	if len(offsets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	var failed error
	c.client.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				failed = err
				return
			}
			for _, t := range resp.Topics {
				for _, part := range t.Partitions {
					if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
						failed = err
						continue
					}
					if p := c.parts[part.Partition]; p != nil && t.Topic == c.topic {
						p.committed = offsets[part.Partition].Offset
					}
				}
			}
		})
	if failed != nil {
		c.cfg.logger.Warn("tenancykafka: committing offsets failed; retrying after the next round", "topic", c.topic, "error", failed.Error())
	}
}

// pause stops fetching the partitions that have records left in their
// backlog (WithMaxPending is reached), and resumes the others. Call with
// mu held.
func (c *Consumer) pause() {
	var pause, resume []int32
	for _, p := range c.parts {
		switch full := len(p.backlog) > 0; {
		case full && !p.paused:
			pause = append(pause, p.id)
		case !full && p.paused:
			resume = append(resume, p.id)
		default:
			continue
		}
		p.paused = !p.paused
	}
	if len(pause) > 0 {
		c.client.PauseFetchPartitions(map[string][]int32{c.topic: pause})
	}
	if len(resume) > 0 {
		c.client.ResumeFetchPartitions(map[string][]int32{c.topic: resume})
	}
}

// revoked commits what is settled in the partitions the group takes
// away, and forgets them: their unsettled records go, with the records
// after them, to the partitions' next consumer.
func (c *Consumer) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*partition
	for _, id := range revoked[c.topic] {
		if p := c.parts[id]; p != nil {
			ps = append(ps, p)
		}
	}
	c.commit(ctx, ps)
	c.forget(revoked[c.topic])
}

// lost forgets the partitions the member lost without a chance to commit
// (its session expired): the group gave them to another member already.
func (c *Consumer) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forget(lost[c.topic])
}

// forget drops the partitions ids and resumes fetching them, for when
// they come back. Call with mu held.
func (c *Consumer) forget(ids []int32) {
	var resume []int32
	for _, id := range ids {
		if p := c.parts[id]; p != nil && p.paused {
			resume = append(resume, id)
		}
		delete(c.parts, id)
	}
	if len(resume) > 0 {
		c.client.ResumeFetchPartitions(map[string][]int32{c.topic: resume})
	}
}
