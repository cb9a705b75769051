package meter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Flush delivers every window that has closed, and retries what is pending
// from earlier failures, now. It returns the sink's error when records
// remain pending; they will be tried again.
func (r *Recorder) Flush(ctx context.Context) error {
	now := r.clock.now()
	return r.flush(ctx, r.windowOf(now.UnixNano()), now)
}

func (r *Recorder) flush(ctx context.Context, until int64, now time.Time) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.pending = append(r.pending, r.collect(until)...)
	err := r.deliver(ctx, now)
	if err != nil {
		r.spill()
	}
	return err
}

// spill moves the newest pending records past the cap to the spool file,
// so memory stays bounded however long the sink is down. The head of
// pending may have come from the spool and is left alone. flushMu is held.
func (r *Recorder) spill() {
	keep := r.fromSpool + r.cfg.maxPending
	if r.cfg.spool == "" || len(r.pending) <= keep {
		return
	}
	tail := r.pending[keep:]
	file, err := readSpool(r.cfg.spool)
	if err == nil {
		err = writeSpool(r.cfg.spool, append(file, tail...))
	}
	if err != nil {
		r.cfg.logger.Warn("meter: cannot spill pending records to the spool; keeping them in memory", "records", len(tail), "error", err.Error())
		return
	}
	r.stats.spooled.Add(int64(len(tail)))
	r.pending = r.pending[:keep:keep]
	r.spoolHas, r.spoolCount = true, len(file)+len(tail)
}

// deliver sends the pending records in batches; on failure it keeps the
// undelivered ones and sets the next retry. flushMu is held.
func (r *Recorder) deliver(ctx context.Context, now time.Time) error {
	for {
		if err := r.send(ctx, now); err != nil {
			return err
		}
		if !r.spoolHas {
			r.backoff = 0
			return nil
		}
		if err := r.nextFromSpool(); err != nil {
			return err
		}
		if len(r.pending) == 0 {
			r.backoff = 0
			return nil
		}
	}
}

// nextFromSpool drops the delivered head of the spool file and loads the
// next records from it. pending is empty. flushMu is held.
func (r *Recorder) nextFromSpool() error {
	recs, err := readSpool(r.cfg.spool)
	if err != nil {
		return err
	}
	recs = recs[min(r.fromSpool, len(recs)):]
	r.fromSpool = 0
	r.spoolCount = len(recs)
	if len(recs) == 0 {
		r.spoolHas = false
		return removeSpool(r.cfg.spool)
	}
	if err := writeSpool(r.cfg.spool, recs); err != nil {
		return fmt.Errorf("meter: spool: %w", err)
	}
	n := min(len(recs), r.cfg.maxPending)
	r.pending = append(r.pending[:0], recs[:n]...)
	r.fromSpool = n
	return nil
}

// send delivers pending in batches until it is empty or the sink fails.
func (r *Recorder) send(ctx context.Context, now time.Time) error {
	for len(r.pending) > 0 {
		n := min(len(r.pending), r.cfg.batch)
		batch := r.pending[:n]
		err := r.cfg.sink.Write(ctx, slices.Clone(batch))
		if err == nil {
			r.stats.delivered.Add(int64(n))
			r.pending = r.pending[n:]
			continue
		}
		r.stats.retried.Add(1)
		var de *DeliveryError
		if errors.As(err, &de) {
			failed := make([]Record, 0, len(de.Failed))
			seen := make(map[int]bool, len(de.Failed))
			for _, i := range de.Failed {
				if i >= 0 && i < n && !seen[i] {
					seen[i] = true
					failed = append(failed, batch[i])
				}
			}
			r.stats.delivered.Add(int64(n - len(failed)))
			r.pending = append(failed, r.pending[n:]...)
		}
		r.backoff = min(max(r.backoff*2, r.cfg.minBackoff), r.cfg.maxBackoff)
		r.retryAt = now.Add(r.backoff)
		return fmt.Errorf("meter: delivery failed, %d records pending: %w", len(r.pending), err)
	}
	r.pending = nil
	return nil
}

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
	// Every window, open ones included.
	until := r.windowOf(r.clock.nanos()) + 2*int64(r.cfg.window)
	r.flushMu.Lock()
	r.pending = append(r.pending, r.collect(until)...)
	var spoolErr error
	if r.cfg.spool != "" {
		spoolErr = r.spoolPending()
	}
	r.flushMu.Unlock()

	var err error
	for {
		err = r.flush(ctx, until, r.clock.now())
		if err == nil || ctx.Err() != nil {
			break
		}
		// Retry until the deadline, with the usual backoff.
		r.flushMu.Lock()
		wait := r.backoff
		r.flushMu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	if len(r.pending) == 0 && !r.spoolHas {
		if r.cfg.spool != "" {
			return removeSpool(r.cfg.spool)
		}
		return nil
	}
	if r.cfg.spool == "" {
		return fmt.Errorf("%w: %d records, and no spool file (WithSpool): %v", ErrUndelivered, len(r.pending), err)
	}
	if spoolErr != nil {
		return fmt.Errorf("%w: %d records: spool: %v (delivery: %v)", ErrUndelivered, len(r.pending), spoolErr, err)
	}
	// Everything undelivered is in the file already; drop from it what
	// was delivered since, so the next start does not send it again.
	file, rerr := readSpool(r.cfg.spool)
	if rerr == nil {
		rerr = writeSpool(r.cfg.spool, append(slices.Clone(r.pending), file[min(r.fromSpool, len(file)):]...))
	}
	if rerr != nil {
		// The file still holds every undelivered record, and some
		// delivered ones, sent again with their IDs at the next start.
		r.cfg.logger.Warn("meter: cannot drop the delivered records from the spool", "spool", r.cfg.spool, "error", rerr.Error())
	}
	r.cfg.logger.Warn("meter: records spooled for the next start", "records", r.spoolCount-r.fromSpool+len(r.pending), "spool", r.cfg.spool, "error", errString(err))
	r.pending, r.fromSpool, r.spoolHas, r.spoolCount = nil, 0, false, 0
	return nil
}

// spoolPending writes pending, in front of what the spool file holds
// beyond the head already loaded, to the file, so that every undelivered
// record is on disk; pending is then loaded back from it. flushMu is
// held.
func (r *Recorder) spoolPending() error {
	if len(r.pending) == r.fromSpool {
		return nil // pending came from the file
	}
	all := r.pending
	if r.spoolHas {
		file, err := readSpool(r.cfg.spool)
		if err != nil {
			return err
		}
		all = append(slices.Clone(r.pending), file[min(r.fromSpool, len(file)):]...)
	}
	if err := writeSpool(r.cfg.spool, all); err != nil {
		return err
	}
	r.stats.spooled.Add(int64(len(r.pending) - r.fromSpool))
	r.pending, r.fromSpool, r.spoolHas, r.spoolCount = nil, 0, true, len(all)
	return nil
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
	if len(r.pending) > 0 {
		next = min(next, max(r.retryAt.Sub(now), 0))
	}
	r.flushMu.Unlock()
	// A little past the boundary, so that adds stamped just before it
	// have landed.
	return next + 10*time.Millisecond
}
