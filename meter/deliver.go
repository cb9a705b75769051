package meter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// errShutDown is returned by Flush after Shutdown.
var errShutDown = errors.New("meter: Flush after Shutdown")

// Flush delivers every window that has closed, and retries what is pending
// from earlier failures, now. It returns the sink's error when records
// remain pending; they will be tried again. After Shutdown, it returns an
// error and does nothing.
func (r *Recorder) Flush(ctx context.Context) error {
	now := r.clock.now()
	return r.flush(ctx, r.windowOf(now.UnixNano()), now)
}

// FlushAll closes every window, the open one included, and delivers as
// Flush does: for a function that may be frozen or ended once it returns
// (AWS Lambda) to call before it does. Usage added afterwards in the
// window it closed goes on in a new part of that window: a record of its
// own, with the same window and an ID of its own, delivered when the
// window ends or at the next FlushAll. Nothing is counted twice; a
// consumer sums the records of a tenant, meter and window.
func (r *Recorder) FlushAll(ctx context.Context) error {
	now := r.clock.now()
	// Past the part of the current window now open.
	until := max(r.windowOf(now.UnixNano()), r.openFrom.Load()) + 1
	return r.flush(ctx, until, now)
}

func (r *Recorder) flush(ctx context.Context, until int64, now time.Time) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	if r.shut {
		return errShutDown
	}
	r.sawWindow(now.UnixNano())
	r.closeWindows(until)
	return r.deliver(ctx, now)
}

// closeWindows collects the windows that start before until. Without a
// checkpoint, their records join those in memory. With one, they are
// written to the spool, then a checkpoint without them, before anything
// is delivered: a crash at any point finds them in one file or the other
// (in both, the spool's are kept, with the same IDs). flushMu is held.
func (r *Recorder) closeWindows(until int64) {
	if !r.durable {
		r.mem = append(r.mem, r.collect(until)...)
		return
	}
	r.ckptMu.Lock()
	defer r.ckptMu.Unlock()
	recs := r.collect(until)
	if !r.spoolDurably(recs) {
		return
	}
	if err := r.checkpoint(len(recs) > 0); err != nil && len(recs) > 0 {
		r.forgetCheckpoint()
	}
}

// spoolDurably writes recs, just collected, to the spool. When it cannot
// (a full disk), they are kept in memory and the checkpoint is removed,
// for it holds their usage, and would bring it back after they are
// delivered; until a checkpoint is written again, a crash loses the open
// windows. flushMu and ckptMu are held.
func (r *Recorder) spoolDurably(recs []Record) bool {
	if err := r.spool.push(recs); err != nil {
		r.cfg.logger.Error("meter: cannot write closed windows to the spool; they are kept in memory, and a crash loses them and the open windows",
			"records", len(recs), "spool", r.cfg.spool, "error", err.Error())
		r.mem = append(r.mem, recs...)
		r.forgetCheckpoint()
		return false
	}
	r.stats.spooled.Add(int64(len(recs)))
	return true
}

// deliver runs one round of delivery: the records in memory, then those of
// the spool file that were there when it began. The round ends at the
// first batch the sink did not take whole; the records it did not take
// go to the back of the queue, so that one the sink keeps failing never
// holds up the others, and are tried again in the next round, after the
// backoff. With a spool, what stays in memory after a failure is written
// to it. flushMu is held.
func (r *Recorder) deliver(ctx context.Context, now time.Time) error {
	defer r.notePending()
	var failed error
	r.mem, failed = r.deliverMem(ctx, now)
	if r.spool != nil {
		if failed == nil {
			failed = r.deliverSpool(ctx, now)
		}
		if len(r.mem) > 0 {
			r.spill()
		}
	}
	r.boundMem(now)
	if failed == nil {
		r.backoff = 0
		return nil
	}
	r.stats.retried.Add(1)
	r.backoff = min(max(r.backoff*2, r.cfg.minBackoff), r.cfg.maxBackoff)
	r.retryAt = now.Add(r.backoff)
	return fmt.Errorf("meter: delivery failed, %d records pending: %w", r.pendingLocked(), failed)
}

// deliverMem delivers the records in memory in batches and returns those
// left: the ones not tried, then the ones the sink did not take.
func (r *Recorder) deliverMem(ctx context.Context, now time.Time) ([]Record, error) {
	var (
		retry  []Record
		failed error
		i      int
	)
	for i < len(r.mem) && failed == nil {
		n := min(len(r.mem)-i, r.cfg.batch)
		var again []Record
		again, failed = r.write(ctx, r.mem[i:i+n], now)
		retry = append(retry, again...)
		i += n
	}
	if i == len(r.mem) && len(retry) == 0 {
		return nil, failed
	}
	// A new slice, so that the delivered ones are not kept alive.
	return append(slices.Clone(r.mem[i:]), retry...), failed
}

// deliverSpool delivers the records of the spool file in batches, from
// its head to the end it had when the round began. The records of a batch
// the sink took in part are appended again to the file (or kept in memory
// if that fails), so the head moves on; a batch it refused whole stays
// where it is.
func (r *Recorder) deliverSpool(ctx context.Context, now time.Time) error {
	until := r.spool.size
	for {
		batch, err := r.spool.next(r.cfg.batch, until)
		if err != nil {
			r.cfg.logger.Error("meter: cannot read the spool", "spool", r.cfg.spool, "error", err.Error())
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		recs := make([]Record, len(batch))
		for i := range batch {
			recs[i] = batch[i].rec
		}
		again, failed := r.write(ctx, recs, now)
		if isDown(failed) {
			return failed
		}
		if len(again) > 0 {
			if err := r.spool.push(again); err != nil {
				r.cfg.logger.Warn("meter: cannot write records the sink refused back to the spool; keeping them in memory", "records", len(again), "error", err.Error())
				r.mem = append(r.mem, again...)
			} else {
				r.stats.spooled.Add(int64(len(again)))
			}
		}
		if err := r.spool.done(len(batch)); err != nil {
			r.cfg.logger.Warn("meter: cannot note delivered records in the spool; they may be sent again, with their IDs", "error", err.Error())
		}
		if failed != nil {
			return failed
		}
	}
}

// sinkDown marks the error of a sink that failed as a whole.
type sinkDown struct{ err error }

func (e sinkDown) Error() string { return e.err.Error() }
func (e sinkDown) Unwrap() error { return e.err }

func isDown(err error) bool {
	var d sinkDown
	return errors.As(err, &d)
}

// write gives batch to the sink and returns the records to try again. Its
// error is not nil when the round must end: the sink's error, wrapped in
// sinkDown when it failed as a whole (then every record is to be tried
// again). Records past WithMaxRecordAge, and those the sink rejects for
// good, go to the dead-letter file and hold up nothing.
func (r *Recorder) write(ctx context.Context, batch []Record, now time.Time) ([]Record, error) {
	send := batch
	if r.cfg.maxAge > 0 {
		var old []deadLetter
		send = make([]Record, 0, len(batch))
		for _, rec := range batch {
			if now.Sub(rec.WindowEnd) > r.cfg.maxAge {
				old = append(old, deadLetter{rec, reasonTooOld})
			} else {
				send = append(send, rec)
			}
		}
		r.deadLetter(old, now)
		if len(send) == 0 {
			return nil, nil
		}
	}
	err := r.cfg.sink.Write(ctx, slices.Clone(send))
	if err == nil {
		r.stats.delivered.Add(int64(len(send)))
		return nil, nil
	}
	var de *DeliveryError
	if !errors.As(err, &de) {
		return send, sinkDown{err}
	}
	seen := make(map[int]bool, len(de.Failed)+len(de.Rejected))
	var rejected []deadLetter
	for _, rj := range de.Rejected {
		if rj.Index >= 0 && rj.Index < len(send) && !seen[rj.Index] {
			seen[rj.Index] = true
			rejected = append(rejected, deadLetter{send[rj.Index], "rejected by the sink: " + rj.Reason})
		}
	}
	r.deadLetter(rejected, now)
	var failed []Record
	for _, i := range de.Failed {
		if i >= 0 && i < len(send) && !seen[i] {
			seen[i] = true
			failed = append(failed, send[i])
		}
	}
	r.stats.delivered.Add(int64(len(send) - len(seen)))
	if len(failed) == 0 {
		return nil, nil
	}
	return failed, err
}

// spill writes the records in memory to the spool file, so that they are
// on disk while the sink is down, and memory holds no more than the
// records read back from the file. flushMu is held.
func (r *Recorder) spill() {
	if err := r.spool.push(r.mem); err != nil {
		r.cfg.logger.Warn("meter: cannot write pending records to the spool; keeping them in memory", "records", len(r.mem), "error", err.Error())
		return
	}
	r.stats.spooled.Add(int64(len(r.mem)))
	r.mem = nil
}

// boundMem moves the oldest records in memory past WithMaxPending to the
// dead-letter file, or drops them without one: the sink is down and there
// is no spool to hold them (or it cannot be written). flushMu is held.
func (r *Recorder) boundMem(now time.Time) {
	over := len(r.mem) - r.cfg.maxPending
	if over <= 0 {
		return
	}
	if r.dead != nil {
		dl := make([]deadLetter, over)
		for i := range dl {
			dl[i] = deadLetter{r.mem[i], reasonPendingFull}
		}
		r.deadLetter(dl, now)
	} else {
		r.stats.dropped.Add(int64(over))
		r.cfg.logger.Error("meter: too many undelivered records; the oldest are dropped",
			"records", over, "max_pending", r.cfg.maxPending, "spool", r.cfg.spool)
	}
	r.mem = slices.Clone(r.mem[over:])
}

// pendingLocked counts the undelivered records. flushMu is held.
func (r *Recorder) pendingLocked() int {
	n := len(r.mem)
	if r.spool != nil {
		n += r.spool.count
	}
	return n
}

// notePending publishes the count of undelivered records for Stats, which
// must not wait for a delivery. flushMu is held.
func (r *Recorder) notePending() { r.pendingN.Store(int64(r.pendingLocked())) }

// Shutdown stops the delivery goroutine, closes every window, open ones
// included, and writes every undelivered record to the spool file
// ([WithSpool]) before it gives the sink any time: from then on, the
// process may exit at any moment (a second SIGTERM, a deadline) without
// losing usage. It then delivers from the spool until ctx is done; what is
// not delivered stays in the spool for the next start. Without a spool,
// Shutdown delivers until ctx is done and returns an error wrapping
// [ErrUndelivered] for what is left. Adds after Shutdown are counted as
// Late.
func (r *Recorder) Shutdown(ctx context.Context) error {
	if !r.closed.CompareAndSwap(false, true) {
		return errors.New("meter: Shutdown called twice")
	}
	if r.cfg.loop {
		close(r.stop)
	}
	select {
	case <-r.loopDone:
	case <-ctx.Done():
		// The loop is stuck in a delivery: its records stay pending when
		// it gives up, and are spooled below.
		r.cancelLoop()
		<-r.loopDone
	}
	r.cancelLoop()
	if r.ckptDone != nil {
		<-r.ckptDone
	}

	r.flushMu.Lock()
	// Every window, open ones included: no add lands after closed. A
	// restart of this instance goes on after them (see recover).
	now := r.clock.nanos()
	r.sawWindow(now)
	after := max(r.openFrom.Load(), r.windowOf(now)) + 1
	r.ckptMu.Lock()
	r.mem = append(r.mem, r.collect(math.MaxInt64)...)
	var spoolErr error
	if r.spool != nil && len(r.mem) > 0 {
		if spoolErr = r.spool.push(r.mem); spoolErr == nil {
			r.stats.spooled.Add(int64(len(r.mem)))
			r.mem = nil
		}
	}
	if r.durable {
		if spoolErr != nil || r.checkpointAt(true, after) != nil {
			r.forgetCheckpoint()
		}
	}
	r.ckptMu.Unlock()
	r.notePending()
	r.flushMu.Unlock()

	var err error
	for {
		r.flushMu.Lock()
		err = r.deliver(ctx, r.clock.now())
		wait := r.backoff
		r.flushMu.Unlock()
		if err == nil || ctx.Err() != nil {
			break
		}
		// Retry until the deadline, with the usual backoff.
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}

	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.shut = true
	spooled := 0
	if r.spool != nil {
		spooled = r.spool.count
		if cerr := r.spool.close(); cerr != nil && spoolErr == nil {
			spoolErr = cerr
		}
	}
	if r.dead != nil {
		r.dead.close()
	}
	if len(r.mem) > 0 {
		if r.spool == nil {
			return fmt.Errorf("%w: %d records, and no spool file (WithSpool): %v", ErrUndelivered, len(r.mem), err)
		}
		return fmt.Errorf("%w: %d records: spool: %v (delivery: %v)", ErrUndelivered, len(r.mem), spoolErr, err)
	}
	if spooled > 0 {
		r.cfg.logger.Warn("meter: records spooled for the next start", "records", spooled, "spool", r.cfg.spool, "error", errString(err))
	}
	return spoolErr
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// run delivers each window as it closes and retries failures.
func (r *Recorder) run() {
	defer close(r.loopDone)
	timer := time.NewTimer(r.untilNext())
	defer timer.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-timer.C:
		}
		r.clock.resync()
		now := r.clock.now()
		if err := r.flush(r.loopCtx, r.windowOf(now.UnixNano()), now); err != nil {
			r.cfg.logger.Warn("meter: delivery failed; records kept and retried", "error", err.Error())
		}
		timer.Reset(r.untilNext())
	}
}

// untilNext is the wait before the next window closes or the next retry.
func (r *Recorder) untilNext() time.Duration {
	now := r.clock.now()
	next := time.Unix(0, r.windowOf(now.UnixNano())+int64(r.cfg.window)).Sub(now)
	r.flushMu.Lock()
	if r.pendingLocked() > 0 {
		next = min(next, max(r.retryAt.Sub(now), 0))
	}
	r.flushMu.Unlock()
	// A little past the boundary, so that adds stamped just before it
	// have landed.
	return next + 10*time.Millisecond
}
