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
	return r.deliver(ctx, now)
}

// deliver sends the pending records in batches; on failure it keeps the
// undelivered ones and sets the next retry. flushMu is held.
func (r *Recorder) deliver(ctx context.Context, now time.Time) error {
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
	r.backoff = 0
	if r.spooled {
		// Everything loaded from the spool is delivered: a crash from
		// here on must not send it again.
		r.spooled = false
		return removeSpool(r.cfg.spool)
	}
	return nil
}

// Shutdown stops the delivery goroutine, closes every window, open ones
// included, and delivers all records before ctx is done. What cannot be
// delivered is written to the spool file; without one, Shutdown returns an
// error wrapping [ErrUndelivered]. Adds after Shutdown are counted as Late.
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
	if len(r.pending) == 0 {
		if r.cfg.spool != "" {
			return removeSpool(r.cfg.spool)
		}
		return nil
	}
	if r.cfg.spool == "" {
		return fmt.Errorf("%w: %d records, and no spool file (WithSpool): %v", ErrUndelivered, len(r.pending), err)
	}
	if werr := writeSpool(r.cfg.spool, r.pending); werr != nil {
		return fmt.Errorf("%w: %d records: spool: %v (delivery: %v)", ErrUndelivered, len(r.pending), werr, err)
	}
	r.stats.spooled.Add(int64(len(r.pending)))
	r.cfg.logger.Warn("meter: records spooled for the next start", "records", len(r.pending), "spool", r.cfg.spool, "error", errString(err))
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
