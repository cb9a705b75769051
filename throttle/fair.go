package throttle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// ReasonFairShare is the reason of a message FairShare deferred: its
// tenant had more messages waiting for a worker than its share.
const ReasonFairShare Reason = "fair_share"

// The bounds of FairShare's deferrals, in one place.
const (
	// DefaultFairService is the handler's duration FairShare assumes
	// until it has measured one. It is short on purpose: a message
	// deferred too briefly comes back and is deferred again by then
	// measured durations, while one deferred too long leaves workers
	// idle.
	DefaultFairService = time.Millisecond
	// MaxFairDeferral bounds a deferral, however long the backlog.
	MaxFairDeferral = 15 * time.Minute
)

// FairShare shares a consumer's workers among the tenants whose messages
// wait for them, so that a tenant with a backlog on a shared queue does
// not make the others wait behind it: a noisy neighbour on a queue.
//
// At most workers messages run their handler at once. A message that
// finds every worker busy waits in its tenant's line, and when a worker
// is free the tenants with messages waiting take turns (each as many
// messages per turn as the weight of its tier, WithTierWeights), so a
// tenant's messages wait for a share of the workers, not for the
// messages of others queued before them. A tenant alone on the queue
// gets every worker.
//
// Waiting is bounded (WithWaiting): when the bound is reached, the
// tenant with the longest line gives way: the newest of its waiting
// messages is deferred to make room for a message of a tenant with fewer
// waiting, and a new message of the tenant with the longest line is
// deferred at once. A deferred message is delivered again by its
// transport (message.Defer), so the consumer reads past a tenant's
// backlog instead of waiting for it, and comes back to it later. A
// tenant's deferred messages are spread over the time its share of the
// workers takes to handle them: each is deferred one share of the
// handler's measured duration (the duration × the tenants with messages
// waiting / workers; DefaultFairService before the first measurement)
// after the previous one, and no earlier than its line would take to
// drain, up to MaxFairDeferral. So a backlog comes back about as fast as
// its tenant's turns can take it, and a tenant with a few messages more
// than its places comes back within a few turns.
// Deferrals are recorded (tenant.Rejection, "throttle" and "fair_share")
// for the message log and the meter, and are never dead-lettered.
//
// Fairness needs a transport that hands the handler more messages at once
// than the workers and the waiting bound hold together (memqueue from
// several goroutines, a consumer's concurrency option): the messages
// beyond the workers are the ones that wait, it is among them that turns
// are taken, and the deliveries beyond those are what reads past a
// backlog. With the defaults, give the transport a concurrency of at
// least three times the workers.
//
// A FairShare is safe for concurrent use. Give each consumer's handler
// its own.
type FairShare struct {
	workers    int
	maxWaiting int
	weights    map[string]int
	now        func() time.Time

	mu      sync.Mutex
	free    int                  // workers not running a message
	waiting int                  // messages waiting, in all lines
	lines   map[string]*fairLine // by tenant ID, lines with messages waiting
	due     map[string]time.Time // by tenant ID, when its last deferral is due
	ring    []*fairLine          // lines with messages waiting, in turn order
	turn    int                  // index in ring of the line whose turn it is
	credit  int                  // messages left in the turn of ring[turn]
	service time.Duration        // moving average of the handler's duration
}

// fairLine is the messages of one tenant waiting for a worker, oldest
// first.
type fairLine struct {
	tenant  string
	weight  int
	waiters []*fairWaiter
}

// fairWaiter is one message waiting. Its channel receives true when the
// message is given a worker, false when it gives way.
type fairWaiter struct {
	ch chan bool
}

// FairOption configures a [FairShare].
type FairOption func(*fairConfig)

type fairConfig struct {
	waiting int
	weights map[string]int
	now     func() time.Time
	errs    []error
}

// WithWaiting bounds how many messages may wait for a worker at once, all
// tenants together. Default: as many as the workers. A tenant can have at
// most about its share of them waiting while other tenants have messages
// waiting too.
func WithWaiting(n int) FairOption {
	return func(c *fairConfig) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("throttle: WithWaiting(%d): the bound cannot be negative", n))
		}
		c.waiting = n
	}
}

// WithTierWeights gives the tenants of a tier name more messages per
// turn: a tier of weight 3 gets three messages for every one of a tier
// of weight 1 while both have messages waiting. Default weight 1.
func WithTierWeights(weights map[string]int) FairOption {
	return func(c *fairConfig) {
		for tier, w := range weights {
			if w < 1 {
				c.errs = append(c.errs, fmt.Errorf("throttle: WithTierWeights: tier %q has weight %d; give each tier a weight of at least 1", tier, w))
			}
		}
		c.weights = make(map[string]int, len(weights))
		for tier, w := range weights {
			c.weights[tier] = w
		}
	}
}

// WithFairClock sets the time source FairShare measures the handler's
// duration by. Default time.Now, also for nil.
func WithFairClock(now func() time.Time) FairOption {
	return func(c *fairConfig) { c.now = now }
}

// NewFairShare returns a FairShare of workers workers (at least 1).
func NewFairShare(workers int, opts ...FairOption) (*FairShare, error) {
	var c fairConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if workers < 1 {
		c.errs = append(c.errs, fmt.Errorf("throttle: NewFairShare(%d): give it at least one worker: as many as the consumer runs handlers at once", workers))
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	if c.waiting == 0 {
		c.waiting = workers
	}
	if c.now == nil {
		c.now = time.Now
	}
	f := &FairShare{
		workers:    workers,
		maxWaiting: c.waiting,
		weights:    c.weights,
		now:        c.now,
		free:       workers,
		lines:      make(map[string]*fairLine),
		due:        make(map[string]time.Time),
	}
	return f, nil
}

// MessageMiddleware returns the message middleware that runs each
// message when its tenant's turn gives it a worker, or defers it. It
// belongs inside the trust mode, which establishes the tenant, and
// outside the Limiter's MessageMiddleware, so that a message waiting for
// a worker holds none of its tenant's in-flight slots; tenancy's
// WithMessageFairShare places it there. A message without a tenant is
// passed on as it is, for the layers inside to refuse.
func (f *FairShare) MessageMiddleware() message.Middleware {
	return func(next message.Handler) message.Handler {
		if next == nil {
			panic("throttle: FairShare.MessageMiddleware needs a handler")
		}
		return request.NewMessageHandler[*message.Message](request.Throttle, next, func(st *request.State, m *message.Message, next request.MessageNext[*message.Message]) error {
			t, ok := tenant.FromContext(st)
			if !ok {
				return next.HandleMessage(st, m)
			}
			if !f.acquire(st, t) {
				st.Reject(request.Rejection{By: "throttle", Reason: string(ReasonFairShare)})
				return message.Defer(f.deferral(t.ID))
			}
			start := f.now()
			defer f.release(start)
			return next.HandleMessage(st, m)
		})
	}
}

// Waiting returns how many messages wait for a worker now, all tenants
// together.
func (f *FairShare) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting
}

// acquire waits for a worker for a message of t, and reports whether it
// got one; false means the message is to be deferred.
func (f *FairShare) acquire(ctx context.Context, t tenant.Tenant) bool {
	f.mu.Lock()
	if f.free > 0 && f.waiting == 0 {
		f.free--
		f.mu.Unlock()
		return true
	}
	line := f.lines[t.ID]
	n := 0
	if line != nil {
		n = len(line.waiters)
	}
	if f.waiting >= f.maxWaiting {
		longest := f.longest()
		if longest == nil || len(longest.waiters) <= n+1 {
			f.mu.Unlock()
			return false
		}
		f.giveWay(longest)
	}
	if line == nil {
		line = &fairLine{tenant: t.ID, weight: f.weight(t)}
		f.lines[t.ID] = line
		f.ring = append(f.ring, line)
		if len(f.ring) == 1 {
			f.turn, f.credit = 0, line.weight
		}
	}
	w := &fairWaiter{ch: make(chan bool, 1)}
	line.waiters = append(line.waiters, w)
	f.waiting++
	f.mu.Unlock()

	select {
	case granted := <-w.ch:
		return granted
	case <-ctx.Done():
	}
	f.mu.Lock()
	if f.remove(line, w) {
		f.mu.Unlock()
		return false
	}
	f.mu.Unlock()
	// A worker or a deferral was given at the same time as ctx ended.
	if <-w.ch {
		f.release(f.now())
	}
	return false
}

// release frees the worker of a message that started at start: the next
// message in turn takes it.
func (f *FairShare) release(start time.Time) {
	d := f.now().Sub(start)
	f.mu.Lock()
	defer f.mu.Unlock()
	if d > 0 {
		if f.service == 0 {
			f.service = d
		} else {
			f.service += (d - f.service) / 8
		}
	}
	if len(f.ring) == 0 {
		f.free++
		return
	}
	line := f.ring[f.turn]
	w := line.waiters[0]
	line.waiters = line.waiters[1:]
	f.waiting--
	f.credit--
	switch {
	case len(line.waiters) == 0:
		f.drop(line)
	case f.credit <= 0:
		f.advance()
	}
	w.ch <- true
}

// deferral is how long a message of tenant id waits before its next
// delivery: one share of the handler's duration after the last one of
// the tenant deferred, and no earlier than the tenant's waiting line
// takes to drain.
func (f *FairShare) deferral(id string) time.Duration {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	service := f.service
	if service == 0 {
		service = DefaultFairService
	}
	lines := max(len(f.ring), 1)
	share := service * time.Duration(lines) / time.Duration(f.workers)
	n := 0
	if line := f.lines[id]; line != nil {
		n = len(line.waiters)
	}
	due := now.Add(share * time.Duration(n+1))
	if next := f.due[id].Add(share); next.After(due) {
		due = next
	}
	if due.Sub(now) > MaxFairDeferral {
		due = now.Add(MaxFairDeferral)
	}
	f.due[id] = due
	if len(f.due) > 4*f.maxWaiting+1024 {
		for k, d := range f.due {
			if !d.After(now) {
				delete(f.due, k)
			}
		}
	}
	return due.Sub(now)
}

// weight is the number of messages per turn of t's tier.
func (f *FairShare) weight(t tenant.Tenant) int {
	if w, ok := f.weights[t.Tier.String()]; ok {
		return w
	}
	return 1
}

// longest returns the line with the most messages waiting, the one in
// turn last on a tie. f.mu is held.
func (f *FairShare) longest() *fairLine {
	var l *fairLine
	for _, line := range f.ring {
		if l == nil || len(line.waiters) >= len(l.waiters) {
			l = line
		}
	}
	return l
}

// giveWay defers the newest message waiting in line. f.mu is held.
func (f *FairShare) giveWay(line *fairLine) {
	w := line.waiters[len(line.waiters)-1]
	line.waiters[len(line.waiters)-1] = nil
	line.waiters = line.waiters[:len(line.waiters)-1]
	f.waiting--
	if len(line.waiters) == 0 {
		f.drop(line)
	}
	w.ch <- false
}

// remove takes w out of line, if it is still waiting there. f.mu is held.
func (f *FairShare) remove(line *fairLine, w *fairWaiter) bool {
	for i, x := range line.waiters {
		if x == w {
			line.waiters = append(line.waiters[:i], line.waiters[i+1:]...)
			f.waiting--
			if len(line.waiters) == 0 {
				f.drop(line)
			}
			return true
		}
	}
	return false
}

// drop takes an empty line out of the turns. f.mu is held.
func (f *FairShare) drop(line *fairLine) {
	delete(f.lines, line.tenant)
	for i, l := range f.ring {
		if l != line {
			continue
		}
		f.ring = append(f.ring[:i], f.ring[i+1:]...)
		switch {
		case len(f.ring) == 0:
			f.turn, f.credit = 0, 0
		case i < f.turn:
			f.turn--
		case i == f.turn:
			if f.turn == len(f.ring) {
				f.turn = 0
			}
			f.credit = f.ring[f.turn].weight
		}
		return
	}
}

// advance gives the turn to the next line. f.mu is held.
func (f *FairShare) advance() {
	f.turn = (f.turn + 1) % len(f.ring)
	f.credit = f.ring[f.turn].weight
}
