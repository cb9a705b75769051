package kinesisstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tenancykit/tenancy/internal/recovered"
	"github.com/tenancykit/tenancy/message"
)

// ConsumerAPI is the part of the Kinesis client a Consumer uses;
// *kinesis.Client implements it.
type ConsumerAPI interface {
	ListShards(ctx context.Context, params *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, params *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, params *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ ConsumerAPI = (*kinesis.Client)(nil)

// Consumer reads every shard of a stream and hands each record, as a
// message.Message, to a message.Handler: the shards at once, the records
// of a shard one at a time, in order. It is the only reader of the stream
// for its Checkpoints: two Consumers sharing them would each handle every
// record. Its methods must not be called concurrently with each other.
type Consumer struct {
	client     ConsumerAPI
	stream     string
	cp         Checkpoints
	deadLetter *Publisher
	cfg        config

	shards map[string]*shard // by ID
	order  []string          // shard IDs, as listed
	listed time.Time         // when the shards were listed, on the clock
	relist bool              // a shard ended: list them again
}

// shard is what a Consumer knows of one shard.
type shard struct {
	id       string
	parents  []string
	loaded   bool    // its checkpoint was read
	saved    string  // the checkpoint last read or stored
	lastRead string  // sequence number of the last record read
	iterator *string // nil: get one after lastRead
	ended    bool    // GetRecords said the shard is closed and read
	done     bool    // ended and every record settled: ShardEnd stored
	entries  []*entry
}

// entry is a record read and not yet settled.
type entry struct {
	m          *message.Message
	key        string // partition key
	prev       string // sequence number of the record read before it, "" for none
	due        time.Time
	deliveries int
	deadReason string // set once it is to be dead-lettered
}

// NewConsumer returns a Consumer of stream (its name) that keeps its
// progress in checkpoints and writes rejected messages, and those that
// failed WithMaxDeliveries times, with deadLetter. Kinesis has no
// dead-letter path of its own, hence deadLetter is required: a Publisher
// to another stream. It takes [WithClock], [WithBatch],
// [WithPollInterval], [WithMaxDeliveries], [WithRetryDelay],
// [WithMaxPending], [WithShardRefresh] and [WithLogger].
func NewConsumer(client ConsumerAPI, stream string, checkpoints Checkpoints, deadLetter *Publisher, opts ...Option) (*Consumer, error) {
	switch {
	case client == nil || stream == "":
		return nil, errors.New("kinesisstream: NewConsumer needs a client and a stream name")
	case checkpoints == nil:
		return nil, errors.New("kinesisstream: NewConsumer needs Checkpoints (a MemoryCheckpoints for tests)")
	case deadLetter == nil:
		return nil, errors.New("kinesisstream: NewConsumer needs a dead-letter Publisher (NewPublisher to another stream): Kinesis has no dead-letter path of its own")
	case deadLetter.stream == stream:
		return nil, errors.New("kinesisstream: the dead-letter Publisher writes to the stream read: give it a stream of its own")
	}
	c := newConfig(opts)
	switch {
	case len(c.publisherOnly) > 0:
		return nil, fmt.Errorf("kinesisstream: %s applies to NewPublisher, not NewConsumer", strings.Join(c.publisherOnly, ", "))
	case c.batch < 0 || c.batch > 10000:
		return nil, errors.New("kinesisstream: WithBatch needs a number of records from 1 to 10,000")
	case c.pollInterval < 0, c.maxDeliveries < 0, c.retryDelay < 0, c.maxPending < 0, c.shardRefresh < 0:
		return nil, errors.New("kinesisstream: WithPollInterval, WithMaxDeliveries, WithRetryDelay, WithMaxPending and WithShardRefresh need positive values")
	}
	return &Consumer{client: client, stream: stream, cp: checkpoints, deadLetter: deadLetter, cfg: c, shards: map[string]*shard{}}, nil
}

// Poll does one round, without waiting: it lists the shards when due
// (WithShardRefresh), then, for every shard at once, reads a batch of
// records (unless WithMaxPending are unsettled), hands to h, in order,
// those new records and the deferred and failed ones that are due, writes
// dead letters, and stores the shard's checkpoint. It returns how many
// messages it handed to h, and the errors of the round, which later rounds
// retry: nothing that was read is given up.
//
// Once ctx is done, Poll hands no more records to h; those it read stay
// unsettled, before the checkpoint it stores.
func (c *Consumer) Poll(ctx context.Context, h message.Handler) (int, error) {
	if err := c.listShards(ctx); err != nil {
		return 0, err
	}
	type result struct {
		n   int
		err error
	}
	var (
		wg      sync.WaitGroup
		polled  []*shard
		results []result
	)
	for _, id := range c.order {
		sh := c.shards[id]
		if !sh.done && c.parentsDone(sh) {
			polled = append(polled, sh)
		}
	}
	results = make([]result, len(polled))
	for i, sh := range polled {
		wg.Go(func() {
			n, err := c.pollShard(ctx, sh, h)
			results[i] = result{n, err}
		})
	}
	wg.Wait()
	n, errs := 0, []error(nil)
	for i, r := range results {
		n += r.n
		errs = append(errs, r.err)
		if polled[i].done {
			c.relist = true // its children may be new
		}
	}
	return n, errors.Join(errs...)
}

// Run polls until ctx is done, waiting WithPollInterval between rounds.
// Kinesis errors are reported to WithLogger and retried the next round.
// It returns nil once ctx is done.
func (c *Consumer) Run(ctx context.Context, h message.Handler) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := c.Poll(ctx, h); err != nil && ctx.Err() == nil {
			c.cfg.logger.Warn("kinesisstream: polling failed; retrying", "stream", c.stream, "error", err.Error())
		}
		t.Reset(c.cfg.pollInterval)
	}
}

// listShards lists the stream's shards when it is time to.
func (c *Consumer) listShards(ctx context.Context) error {
	now := c.cfg.now()
	if len(c.order) > 0 && !c.relist && now.Sub(c.listed) < c.cfg.shardRefresh {
		return nil
	}
	var (
		listed []types.Shard
		token  *string
	)
	for {
		in := &kinesis.ListShardsInput{NextToken: token}
		if token == nil {
			in.StreamName = aws.String(c.stream)
		}
		out, err := c.client.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("kinesisstream: ListShards %s: %w", c.stream, err)
		}
		listed = append(listed, out.Shards...)
		if token = out.NextToken; token == nil {
			break
		}
	}
	order := make([]string, 0, len(listed))
	seen := make(map[string]bool, len(listed))
	for _, s := range listed {
		id := aws.ToString(s.ShardId)
		order, seen[id] = append(order, id), true
		if c.shards[id] == nil {
			sh := &shard{id: id}
			for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
				if p != nil {
					sh.parents = append(sh.parents, *p)
				}
			}
			c.shards[id] = sh
		}
	}
	// A shard past the stream's retention is listed no more; one that
	// still holds records keeps them (they are settled or dead-lettered
	// from memory).
	for id, sh := range c.shards {
		if !seen[id] && len(sh.entries) == 0 {
			delete(c.shards, id)
		} else if !seen[id] {
			order = append(order, id)
		}
	}
	c.order, c.listed, c.relist = order, now, false
	return nil
}

// parentsDone reports whether the shards sh was split from or merged
// from, when still listed, have had every record settled: a key's
// records are read in order across a reshard.
func (c *Consumer) parentsDone(sh *shard) bool {
	for _, p := range sh.parents {
		if ps := c.shards[p]; ps != nil && !ps.done {
			return false
		}
	}
	return true
}

// pollShard is a round on one shard.
func (c *Consumer) pollShard(ctx context.Context, sh *shard, h message.Handler) (int, error) {
	if !sh.loaded {
		seq, err := c.cp.Checkpoint(ctx, sh.id)
		if err != nil {
			return 0, fmt.Errorf("kinesisstream: checkpoint of %s: %w", sh.id, err)
		}
		sh.loaded, sh.saved = true, seq
		if seq == ShardEnd {
			sh.ended, sh.done = true, true
			return 0, nil
		}
		sh.lastRead = seq
	}
	var errs []error
	if !sh.ended && len(sh.entries) < c.cfg.maxPending && ctx.Err() == nil {
		errs = append(errs, c.read(ctx, sh))
	}
	n, err := c.deliver(ctx, sh, h)
	errs = append(errs, err, c.checkpoint(context.WithoutCancel(ctx), sh))
	return n, errors.Join(errs...)
}

// read reads a batch of records after the last one read.
func (c *Consumer) read(ctx context.Context, sh *shard) error {
	if sh.iterator == nil {
		in := &kinesis.GetShardIteratorInput{StreamName: aws.String(c.stream), ShardId: aws.String(sh.id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
		if sh.lastRead != "" {
			in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(sh.lastRead)
		}
		out, err := c.client.GetShardIterator(ctx, in)
		if err != nil {
			return fmt.Errorf("kinesisstream: GetShardIterator %s %s: %w", c.stream, sh.id, err)
		}
		sh.iterator = out.ShardIterator
	}
	out, err := c.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: sh.iterator, Limit: aws.Int32(int32(c.cfg.batch))})
	if err != nil {
		// Expired, or Kinesis unreachable: the next round gets an
		// iterator after the last record read.
		sh.iterator = nil
		return fmt.Errorf("kinesisstream: GetRecords %s %s: %w", c.stream, sh.id, err)
	}
	for _, r := range out.Records {
		seq := aws.ToString(r.SequenceNumber)
		sh.entries = append(sh.entries, &entry{
			m:    NewMessage(c.stream, sh.id, seq, r.Data),
			key:  aws.ToString(r.PartitionKey),
			prev: sh.lastRead,
		})
		sh.lastRead = seq
	}
	sh.iterator = out.NextShardIterator
	if sh.iterator == nil {
		sh.ended = true
	}
	return nil
}

// deliver hands the due entries to h, in order, settles each by its
// outcome, and drops those settled.
func (c *Consumer) deliver(ctx context.Context, sh *shard, h message.Handler) (int, error) {
	n := 0
	var errs []error
	kept := sh.entries[:0]
	for _, e := range sh.entries {
		if ctx.Err() != nil || e.due.After(c.cfg.now()) {
			kept = append(kept, e)
			continue
		}
		settled := false
		if e.deadReason == "" {
			e.deliveries++
			e.m.Deliveries = e.deliveries
			n++
			settled = c.settle(e, c.handle(ctx, h, e.m))
		}
		if e.deadReason != "" {
			// A consumer that is stopping still writes the dead letter
			// of what it handled.
			if err := c.deadLetter.DeadLetter(context.WithoutCancel(ctx), e.m, e.key, e.deadReason); err != nil {
				c.cfg.logger.Error("kinesisstream: writing a dead letter failed; retrying", "stream", c.stream, "id", e.m.ID, "reason", e.deadReason, "error", err.Error())
				errs = append(errs, err)
				e.due = c.cfg.now().Add(c.cfg.retryDelay)
			} else {
				settled = true
			}
		}
		if !settled {
			kept = append(kept, e)
		}
	}
	clear(sh.entries[len(kept):])
	sh.entries = kept
	return n, errors.Join(errs...)
}

// handle hands m to h. A handler that panics fails m (retried, then
// dead-lettered "max_deliveries"), and the panic is logged: it stops
// neither the consumer nor the process.
func (c *Consumer) handle(ctx context.Context, h message.Handler, m *message.Message) error {
	err := recovered.Handle(ctx, h, m)
	if pe, ok := err.(*recovered.PanicError); ok {
		c.cfg.logger.Error("kinesisstream: the handler panicked; the message fails", "stream", c.stream, "id", m.ID,
			"deliveries", m.Deliveries, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
	return err
}

// settle acts on the outcome of e's delivery: it reports true for acked;
// a deferred or failed entry is due again later, one to dead-letter gets
// its reason.
func (c *Consumer) settle(e *entry, err error) bool {
	outcome, after, reason := message.OutcomeOf(err)
	switch outcome {
	case message.Acked:
		return true
	case message.Deferred:
		e.due = c.cfg.now().Add(after)
	case message.Failed:
		if e.deliveries < c.cfg.maxDeliveries {
			e.due = c.cfg.now().Add(c.cfg.retryDelay)
			return false
		}
		e.deadReason = "max_deliveries"
	case message.Rejected:
		e.deadReason = reason
	}
	return false
}

// checkpoint stores the shard's checkpoint when it moved: the record
// before the oldest unsettled one, or the last read when all are settled.
func (c *Consumer) checkpoint(ctx context.Context, sh *shard) error {
	want := sh.lastRead
	if len(sh.entries) > 0 {
		want = sh.entries[0].prev
	} else if sh.ended {
		want = ShardEnd
	}
	if want == "" || want == sh.saved {
		return nil
	}
	if err := c.cp.SetCheckpoint(ctx, sh.id, want); err != nil {
		return fmt.Errorf("kinesisstream: storing the checkpoint of %s: %w", sh.id, err)
	}
	sh.saved = want
	sh.done = want == ShardEnd
	return nil
}
