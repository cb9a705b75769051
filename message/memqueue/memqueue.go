// Package memqueue is a message queue in the process's memory, for tests
// and examples: it hands messages to a message.Handler and acts on its
// outcome as a real transport does (acknowledge, deliver again after a
// deferral or a failure, dead-letter with the reason), on a clock the
// caller controls, so that a test sees a deferred message come back by
// moving the clock, without sleeping.
//
//	q := memqueue.New("orders", memqueue.WithClock(clock.Now))
//	q.Publish(body, attrs)
//	q.Drain(ctx, stack.WrapMessages(handler))
//
// It keeps everything it was given until it is dropped; it is no queue
// for production.
package memqueue

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tenancykit/tenancy/message"
)

// Defaults of the options.
const (
	// DefaultMaxDeliveries is how many times a failing message is
	// delivered before it is dead-lettered.
	DefaultMaxDeliveries = 5
)

// Option configures a [Queue].
type Option func(*Queue)

// WithClock sets the time source of deferrals and retries. Default
// time.Now, also for nil.
func WithClock(now func() time.Time) Option { return func(q *Queue) { q.now = now } }

// WithMaxDeliveries sets how many deliveries a failing message gets before
// it is dead-lettered with the reason "max_deliveries". Deferrals count as
// deliveries but never dead-letter a message. Default
// [DefaultMaxDeliveries], also for 0.
func WithMaxDeliveries(n int) Option { return func(q *Queue) { q.maxDeliveries = n } }

// WithRetryDelay sets how long a failed message waits before its next
// delivery. Default 0: it is visible again at once.
func WithRetryDelay(d time.Duration) Option { return func(q *Queue) { q.retryDelay = d } }

// Queue is an in-memory queue. Messages are delivered in the order they
// were published, each to one handler at a time, as soon as they are
// visible. It is safe for concurrent use: several goroutines may call
// [Queue.HandleNext] at once.
type Queue struct {
	name          string
	now           func() time.Time
	maxDeliveries int
	retryDelay    time.Duration

	mu       sync.Mutex
	seq      int
	waiting  []*entry // not in flight, in the order published
	inFlight int
	acked    []message.Message
	dead     []DeadLetter
}

type entry struct {
	m         message.Message
	visibleAt time.Time
}

// DeadLetter is a message the queue dead-lettered, and why: the reason of
// message.OutcomeOf ("stamp:expired"), or "max_deliveries".
type DeadLetter struct {
	Message message.Message
	Reason  string
}

// New returns an empty queue; name is the Source of its messages.
func New(name string, opts ...Option) *Queue {
	q := &Queue{name: name}
	for _, o := range opts {
		if o != nil {
			o(q)
		}
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.maxDeliveries <= 0 {
		q.maxDeliveries = DefaultMaxDeliveries
	}
	return q
}

// PublishOption sets what a transport reports about a message's sender.
type PublishOption func(*message.Message)

// WithSenderID sets the message's SenderID, as SQS reports the sending
// AWS identity.
func WithSenderID(id string) PublishOption { return func(m *message.Message) { m.SenderID = id } }

// Publish adds a message of body and attrs (both copied), visible at
// once, and returns its ID: "1", "2", ... in the order published.
func (q *Queue) Publish(body []byte, attrs map[string]string, opts ...PublishOption) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	m := message.Message{
		ID:         strconv.Itoa(q.seq),
		Body:       slices.Clone(body),
		Attributes: maps.Clone(attrs),
		Source:     q.name,
	}
	for _, o := range opts {
		if o != nil {
			o(&m)
		}
	}
	q.waiting = append(q.waiting, &entry{m: m, visibleAt: q.now()})
	return m.ID
}

// HandleNext delivers the first message visible now to h and acts on its
// outcome, and reports whether there was one.
func (q *Queue) HandleNext(ctx context.Context, h message.Handler) bool {
	q.mu.Lock()
	now := q.now()
	i := slices.IndexFunc(q.waiting, func(e *entry) bool { return !e.visibleAt.After(now) })
	if i < 0 {
		q.mu.Unlock()
		return false
	}
	e := q.waiting[i]
	q.waiting = slices.Delete(q.waiting, i, i+1)
	q.inFlight++
	e.m.Deliveries++
	q.mu.Unlock()
	q.deliver(ctx, h, e)
	return true
}

// Drain delivers each message visible now to h, once, in order, and
// returns how many it delivered. A message it defers or that fails
// waits for a later call.
func (q *Queue) Drain(ctx context.Context, h message.Handler) int {
	q.mu.Lock()
	now := q.now()
	var due []*entry
	q.waiting = slices.DeleteFunc(q.waiting, func(e *entry) bool {
		if e.visibleAt.After(now) {
			return false
		}
		e.m.Deliveries++
		due = append(due, e)
		return true
	})
	q.inFlight += len(due)
	q.mu.Unlock()
	for _, e := range due {
		q.deliver(ctx, h, e)
	}
	return len(due)
}

// deliver hands e to h and acts on the outcome. A handler that panics
// fails the message.
func (q *Queue) deliver(ctx context.Context, h message.Handler, e *entry) {
	m := e.m // the handler gets a copy: what it does to it stays there
	m.Attributes = maps.Clone(e.m.Attributes)
	err := errHandlerPanicked
	defer func() { q.settle(e, err) }()
	err = h.HandleMessage(ctx, &m)
}

var errHandlerPanicked = errors.New("memqueue: the handler panicked")

// settle acts on the outcome of e's delivery.
func (q *Queue) settle(e *entry, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inFlight--
	outcome, after, reason := message.OutcomeOf(err)
	switch outcome {
	case message.Acked:
		q.acked = append(q.acked, e.m)
	case message.Deferred:
		e.visibleAt = q.now().Add(after)
		q.requeue(e)
	case message.Rejected:
		q.dead = append(q.dead, DeadLetter{Message: e.m, Reason: reason})
	default:
		if e.m.Deliveries >= q.maxDeliveries {
			q.dead = append(q.dead, DeadLetter{Message: e.m, Reason: "max_deliveries"})
			return
		}
		e.visibleAt = q.now().Add(q.retryDelay)
		q.requeue(e)
	}
}

// requeue puts e back among the waiting messages in the order published.
func (q *Queue) requeue(e *entry) {
	seq, _ := strconv.Atoi(e.m.ID)
	i, _ := slices.BinarySearchFunc(q.waiting, seq, func(w *entry, seq int) int {
		n, _ := strconv.Atoi(w.m.ID)
		return n - seq
	})
	q.waiting = slices.Insert(q.waiting, i, e)
}

// Waiting returns how many messages wait for a delivery, visible or not.
func (q *Queue) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// InFlight returns how many messages are being handled.
func (q *Queue) InFlight() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inFlight
}

// Acked returns the messages handled successfully, in the order they
// were.
func (q *Queue) Acked() []message.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.acked)
}

// DeadLetters returns the messages dead-lettered, in the order they were.
func (q *Queue) DeadLetters() []DeadLetter {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.dead)
}
