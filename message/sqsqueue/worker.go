package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tenancykit/tenancy/message"
)

// Worker receives the messages of one queue, hands each to a
// message.Handler and acts on its outcome. Its methods must not be called
// concurrently with each other; run several Workers for more at once.
type Worker struct {
	client   Client
	queueURL string
	source   string
	cfg      config
}

// NewWorker returns a Worker of the queue at queueURL. It needs
// [WithDeadLetterQueue], and takes [WithClock], [WithBatch], [WithWait],
// [WithConcurrency], [WithVisibilityTimeout], [WithMaxDeliveries],
// [WithRetryDelay], [WithSource] and [WithLogger].
func NewWorker(client Client, queueURL string, opts ...Option) (*Worker, error) {
	if client == nil || queueURL == "" {
		return nil, errors.New("sqsqueue: NewWorker needs a client and a queue URL")
	}
	c := newConfig(opts)
	if err := c.onlyWorker(); err != nil {
		return nil, err
	}
	switch {
	case c.deadLetter == "":
		return nil, errors.New("sqsqueue: NewWorker needs WithDeadLetterQueue: the queue rejected messages, and failed ones past WithMaxDeliveries, are sent to")
	case c.deadLetter == queueURL:
		return nil, errors.New("sqsqueue: WithDeadLetterQueue names the queue the Worker receives from; give another")
	case c.batch < 1 || c.batch > MaxBatch:
		return nil, fmt.Errorf("sqsqueue: WithBatch(%d): SQS returns 1 to %d messages at a time", c.batch, MaxBatch)
	case c.wait < time.Second || c.wait > MaxWait:
		return nil, fmt.Errorf("sqsqueue: WithWait(%s): give 1s to %s (Poll does not wait)", c.wait, MaxWait)
	case c.concurrency < 1:
		return nil, fmt.Errorf("sqsqueue: WithConcurrency(%d) needs a positive count", c.concurrency)
	case c.visibility < 2*time.Second || c.visibility > MaxVisibility:
		return nil, fmt.Errorf("sqsqueue: WithVisibilityTimeout(%s): give 2s to %s (the heartbeat extends it every half of it)", c.visibility, MaxVisibility)
	case c.maxDeliveries < 1:
		return nil, fmt.Errorf("sqsqueue: WithMaxDeliveries(%d) needs a positive count", c.maxDeliveries)
	case c.retryDelay < 0 || c.retryDelay > MaxVisibility:
		return nil, fmt.Errorf("sqsqueue: WithRetryDelay(%s): give 0 to %s", c.retryDelay, MaxVisibility)
	}
	src := c.source
	if src == "" {
		src = QueueName(queueURL)
	}
	return &Worker{client: client, queueURL: queueURL, source: src, cfg: c}, nil
}

// Poll receives one batch without waiting (WaitTimeSeconds 0), hands each
// message to h and settles it. It returns how many messages it handed to
// h, and the errors of the SQS calls that failed (the messages concerned
// are left to come back after their visibility timeout).
func (w *Worker) Poll(ctx context.Context, h message.Handler) (int, error) {
	return w.round(ctx, h, 0)
}

// Run receives and handles batches until ctx is done, long-polling for up
// to WithWait when the queue is empty. An SQS error is reported to
// WithLogger and, when receiving failed, retried after a second. Once ctx
// is done, Run starts no more handlers, settles those that returned, and
// returns nil; the messages of the batch it did not start come back after
// their visibility timeout.
func (w *Worker) Run(ctx context.Context, h message.Handler) error {
	for ctx.Err() == nil {
		n, err := w.round(ctx, h, w.cfg.wait)
		if err == nil || ctx.Err() != nil {
			continue
		}
		w.cfg.logger.Warn("sqsqueue: SQS call failed; the messages concerned come back after their visibility timeout", "queue", w.source, "error", err.Error())
		if n == 0 { // receiving failed: do not spin
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// inflight is one received message until it is settled.
type inflight struct {
	mu       sync.Mutex // held across a heartbeat's call, so a settlement comes after it
	m        *message.Message
	handle   string
	received time.Time
	settled  bool
}

// round receives one batch, handles it and settles it.
func (w *Worker) round(ctx context.Context, h message.Handler, wait time.Duration) (int, error) {
	out, err := w.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(w.queueURL),
		MaxNumberOfMessages:   int32(w.cfg.batch),
		WaitTimeSeconds:       int32(wait / time.Second),
		VisibilityTimeout:     VisibilitySeconds(w.cfg.visibility),
		MessageAttributeNames: []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameSenderId,
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, fmt.Errorf("sqsqueue: ReceiveMessage %s: %w", w.source, err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	now := w.cfg.now()
	batch := make([]*inflight, len(out.Messages))
	for i, sm := range out.Messages {
		batch[i] = &inflight{m: ToMessage(w.source, sm), handle: aws.ToString(sm.ReceiptHandle), received: now}
	}

	stop := w.heartbeat(batch)
	// Settlements run on, and complete, once ctx is done.
	settleCtx := context.WithoutCancel(ctx)
	var (
		mu      sync.Mutex
		errs    []error
		deletes []*inflight
		handled int
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, w.cfg.concurrency)
	for _, f := range batch {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break // the rest come back after their visibility timeout
		}
		handled++
		wg.Go(func() {
			defer func() { <-sem }()
			del, err := w.settle(settleCtx, f, w.handle(ctx, h, f.m))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if del {
				deletes = append(deletes, f)
			}
		})
	}
	wg.Wait()
	stop()
	if err := w.delete(settleCtx, deletes); err != nil {
		errs = append(errs, err)
	}
	return handled, errors.Join(errs...)
}

// settle acts on the outcome of f's delivery, and says whether f is to be
// deleted.
func (w *Worker) settle(ctx context.Context, f *inflight, herr error) (bool, error) {
	f.mu.Lock()
	f.settled = true
	f.mu.Unlock()
	m := f.m
	outcome, after, reason := message.OutcomeOf(herr)
	switch outcome {
	case message.Acked:
		return true, nil
	case message.Deferred:
		return false, w.hide(ctx, f, after, "deferred")
	case message.Failed:
		if m.Deliveries < w.cfg.maxDeliveries {
			return false, w.hide(ctx, f, w.cfg.retryDelay, "failed")
		}
		reason = "max_deliveries"
	}
	in := DeadLetterInput(w.cfg.deadLetter, m, reason)
	if _, ok := in.MessageAttributes[AttrReason]; !ok {
		w.cfg.logger.Warn("sqsqueue: dead letter has no room for its reason attribute (the message has 10 of its own)",
			"queue", w.source, "message_id", m.ID, "reason", reason)
	}
	if _, err := w.client.SendMessage(ctx, in); err != nil {
		// Not deleted: it comes back after its visibility timeout.
		return false, fmt.Errorf("sqsqueue: dead-lettering %s (%s) to %s: %w", m.ID, reason, QueueName(w.cfg.deadLetter), err)
	}
	return true, nil
}

// hide makes f visible again after d.
func (w *Worker) hide(ctx context.Context, f *inflight, d time.Duration, why string) error {
	_, err := w.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(w.queueURL), ReceiptHandle: aws.String(f.handle), VisibilityTimeout: VisibilitySeconds(d),
	})
	if err != nil {
		return fmt.Errorf("sqsqueue: ChangeMessageVisibility of %s (%s) on %s: %w", f.m.ID, why, w.source, err)
	}
	return nil
}

// delete deletes fs, ten at a time. The messages whose deletion failed
// come back after their visibility timeout and are delivered again.
func (w *Worker) delete(ctx context.Context, fs []*inflight) error {
	var errs []error
	for len(fs) > 0 {
		n := min(len(fs), MaxBatch)
		chunk := fs[:n]
		fs = fs[n:]
		entries := make([]types.DeleteMessageBatchRequestEntry, n)
		for i, f := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(f.handle)}
		}
		out, err := w.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(w.queueURL), Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("sqsqueue: DeleteMessageBatch on %s: %w", w.source, err))
			continue
		}
		for _, e := range out.Failed {
			id := aws.ToString(e.Id)
			mid := id
			if i, err := strconv.Atoi(id); err == nil && i >= 0 && i < n {
				mid = chunk[i].m.ID
			}
			errs = append(errs, fmt.Errorf("sqsqueue: DeleteMessageBatch on %s: message %s: %s: %s", w.source, mid, aws.ToString(e.Code), aws.ToString(e.Message)))
		}
	}
	return errors.Join(errs...)
}

// heartbeat extends the visibility of batch's unsettled messages every
// half of the visibility timeout, until the 12 hours SQS allows since they
// were received, and returns the function that stops it.
func (w *Worker) heartbeat(batch []*inflight) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.cfg.visibility / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			for _, f := range batch {
				w.extend(f)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (w *Worker) extend(f *inflight) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settled {
		return
	}
	d := min(w.cfg.visibility, f.received.Add(MaxVisibility).Sub(w.cfg.now()))
	if d <= 0 {
		return
	}
	_, err := w.client.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(w.queueURL), ReceiptHandle: aws.String(f.handle), VisibilityTimeout: VisibilitySeconds(d),
	})
	if err != nil {
		w.cfg.logger.Warn("sqsqueue: extending the visibility of a message being handled failed; it may be delivered again while its handler runs",
			"queue", w.source, "message_id", f.m.ID, "error", err.Error())
	}
}
