package meter

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// Backoff returns the current retry delay and when the next retry is due.
func (r *Recorder) Backoff() (time.Duration, time.Time) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.backoff, r.retryAt
}

// InMemory counts the undelivered records held in memory: those in no
// file, and those read back from the spool.
func (r *Recorder) InMemory() int {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	n := len(r.mem)
	if r.spool != nil {
		n += len(r.spool.cache)
	}
	return n
}

// Abandon leaves r as a process killed with SIGKILL leaves it: nothing is
// delivered or written, and its files are closed, which releases the
// spool's lock. The Recorder must have been made WithoutLoop.
func (r *Recorder) Abandon() {
	r.closed.Store(true)
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.shut = true
	if r.spool != nil {
		if r.spool.f != nil {
			r.spool.f.Close()
			r.spool.f = nil
		}
		r.spool.lock.Close()
		r.spool.lock = nil
	}
}

// ReadSpool returns the undelivered records of the spool file at path, as
// the next start will read them; nil when there is no file.
func ReadSpool(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type at struct {
		rec   Record
		start int64
	}
	var (
		recs []at
		head int64
		off  int64
		line []byte
	)
	br := bufio.NewReader(f)
	for {
		line, _, err = readLine(br, line)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		start := off
		off += int64(len(line)) + 1
		l, _, err := parseSpoolLine(line)
		if err != nil {
			return nil, err
		}
		if l.Record != nil {
			recs = append(recs, at{*l.Record, start})
		} else {
			head = max(head, *l.DeliveredTo)
		}
	}
	var out []Record
	for _, r := range recs {
		if r.start >= head {
			out = append(out, r.rec)
		}
	}
	return out, nil
}

// Checkpoint writes a checkpoint now, as the checkpoint goroutine does
// every interval.
func (r *Recorder) Checkpoint() error {
	r.ckptMu.Lock()
	defer r.ckptMu.Unlock()
	return r.checkpoint(false)
}

// RequestCells counts the entries of the shards' index of the
// middleware's request cells.
func (r *Recorder) RequestCells() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.RLock()
		n += len(s.requests)
		s.mu.RUnlock()
	}
	return n
}
