package meter

import "time"

// Backoff returns the current retry delay and when the next retry is due.
func (r *Recorder) Backoff() (time.Duration, time.Time) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.backoff, r.retryAt
}
