package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/throttle"
)

// The queue scenario's two tenants: globex's backlog is on the queue
// first, acme's few messages after it.
var queueTenants = [2]struct{ id, tier string }{{"globex", "basic"}, {"acme", "premium"}}

// Bounds of the queue scenario's flags.
const (
	maxBacklog     = 100_000
	maxAfter       = 10_000
	maxConcurrency = 4096
	// idlePoll is how long the consumer waits before it looks again when
	// no message is visible (all of them deferred or in hand).
	idlePoll = time.Millisecond
)

// queueOptions are the flags of the queue scenario.
type queueOptions struct {
	fair        bool
	svg         string
	backlog     int // globex's messages, published first
	after       int // acme's, published after them
	workers     int
	work        time.Duration
	concurrency int // messages the consumer hands over at once with -fair
}

func parseQueueFlags(args []string, out io.Writer) (queueOptions, error) {
	var o queueOptions
	fs := flag.NewFlagSet("noisyneighbor queue", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.BoolVar(&o.fair, "fair", true, "share the workers among tenants with throttle.FairShare, through tenancy.New(...).WrapMessages")
	fs.StringVar(&o.svg, "svg", "noisyneighbor-queue.svg", `where to write the chart; "" for none`)
	fs.IntVar(&o.backlog, "backlog", 10_000, "messages the basic tenant publishes first")
	fs.IntVar(&o.after, "after", 100, "messages the premium tenant publishes after them")
	fs.IntVar(&o.workers, "workers", 8, "messages the consumer handles at once")
	fs.DurationVar(&o.work, "work", 5*time.Millisecond, "how long each message holds a worker")
	fs.IntVar(&o.concurrency, "concurrency", 0, "messages the consumer hands to the stack at once with -fair (default 10 × -workers)")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: noisyneighbor queue [flags]\n\n"+
			"Puts a basic tenant's backlog on a shared queue, then a premium tenant's few\n"+
			"messages, consumes them with a fixed number of workers, and prints how long\n"+
			"each tenant's messages waited.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if o.backlog < 1 || o.backlog > maxBacklog {
		errs = append(errs, fmt.Errorf("-backlog %d: want 1 to %d messages", o.backlog, maxBacklog))
	}
	if o.after < 1 || o.after > maxAfter {
		errs = append(errs, fmt.Errorf("-after %d: want 1 to %d messages", o.after, maxAfter))
	}
	if o.workers < 1 || o.workers > maxWorkers {
		errs = append(errs, fmt.Errorf("-workers %d: want 1 to %d", o.workers, maxWorkers))
	}
	if o.work < 0 || o.work > maxWork {
		errs = append(errs, fmt.Errorf("-work %v: want 0 to %v", o.work, maxWork))
	}
	if o.concurrency == 0 {
		o.concurrency = 10 * o.workers
	}
	if o.concurrency < o.workers || o.concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("-concurrency %d: want -workers (%d) to %d", o.concurrency, o.workers, maxConcurrency))
	}
	return o, errors.Join(errs...)
}

// record is what happened to one message.
type record struct {
	tenant     int // index in queueTenants
	published  time.Time
	started    time.Time // its handler's start (the work's)
	done       time.Time
	seq        int64 // its place in the order messages were handled: 1, 2, ...
	deliveries int
}

// runQueue runs the queue scenario: it publishes the backlog then the few,
// consumes them all, prints the table, writes the chart and returns what
// it measured.
func runQueue(ctx context.Context, args []string, stdout io.Writer) (*queueReport, error) {
	o, err := parseQueueFlags(args, stdout)
	if err != nil {
		return nil, err
	}
	q := memqueue.New("orders")
	total := o.backlog + o.after
	recs := make([]record, total+1) // by message ID, "1" to total
	start := time.Now()
	for i := range total {
		tn := 0
		if i >= o.backlog {
			tn = 1
		}
		id := q.Publish([]byte("order"), map[string]string{"tenant": queueTenants[tn].id, "tier": queueTenants[tn].tier})
		n, _ := strconv.Atoi(id)
		recs[n] = record{tenant: tn, published: time.Now()}
	}

	// The handler: a fixed time of work per message, as if it waited for
	// a database.
	var handled atomic.Int64
	work := message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		r := &recs[idOf(m)]
		r.started = time.Now()
		if o.work > 0 {
			time.Sleep(o.work)
		}
		r.done = time.Now()
		r.seq = handled.Add(1)
		return nil
	})
	h, n := message.Handler(work), o.workers // a plain pool of workers
	if o.fair {
		fair, err := throttle.NewFairShare(o.workers)
		if err != nil {
			return nil, err
		}
		stack, err := tenancy.New(
			// The producers are the service's own: the tenant is the
			// attribute's. A stamp (message/stamp) would be verified here.
			tenancy.WithMessageTrust(message.UnverifiedAttribute("tenant", message.WithTierAttribute("tier"))),
			tenancy.WithMessageFairShare(fair),
		)
		if err != nil {
			return nil, err
		}
		h, n = stack.WrapMessages(work), o.concurrency
	}
	// Every delivery, counted before the stack sees it.
	counted := message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		recs[idOf(m)].deliveries++
		return h.HandleMessage(ctx, m)
	})
	consume(ctx, q, counted, n, func() bool { return handled.Load() == int64(total) })
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	if dl := q.DeadLetters(); len(dl) > 0 {
		return nil, fmt.Errorf("%d messages dead-lettered, the first for %s", len(dl), dl[0].Reason)
	}

	rep := newQueueReport(o, n, start, recs[1:])
	if err := rep.print(stdout); err != nil {
		return nil, err
	}
	if o.svg != "" {
		if err := writeChartFile(o.svg, rep.chart); err != nil {
			return nil, err
		}
		if _, err := fmt.Fprintf(stdout, "\nchart: %s\n", o.svg); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// idOf is the index of m's record: the queue numbers messages from 1.
func idOf(m *message.Message) int {
	n, _ := strconv.Atoi(m.ID)
	return n
}

// consume hands the queue's messages to h, up to n at once, in the order
// the queue delivers them, until done says all is done or ctx ends; it
// returns once every handler has returned. It is the consumer of a
// transport: each message's outcome is acted on by the queue.
func consume(ctx context.Context, q *memqueue.Queue, h message.Handler, n int, done func() bool) {
	slots := make(chan struct{}, n)
	took := make(chan bool) // whether the goroutine just started found a message
	var wg sync.WaitGroup
	for !done() && ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			found := q.HandleNext(ctx, message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
				took <- true
				return h.HandleMessage(ctx, m)
			}))
			if !found {
				took <- false
			}
		})
		if !<-took {
			// Nothing visible: every message is in hand or deferred.
			t := time.NewTimer(idlePoll)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	wg.Wait()
}
