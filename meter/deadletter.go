package meter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Reasons a record goes to the dead-letter file besides a sink's own.
const (
	// reasonTooOld: the record's window ended longer ago than
	// WithMaxRecordAge.
	reasonTooOld = "too old"
	// reasonPendingFull: memory held WithMaxPending undelivered records
	// and no spool could take more.
	reasonPendingFull = "pending full"
)

// deadLetterLine is a line of the dead-letter file.
type deadLetterLine struct {
	V      int       `json:"v"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Record Record    `json:"record"`
}

// deadLetter is a record that will not be delivered, and why.
type deadLetter struct {
	rec    Record
	reason string
}

// deadLetters is the dead-letter file, appended to. Its user serializes
// the calls (flushMu).
type deadLetters struct {
	path string
	f    *os.File
}

func openDeadLetters(path string) (*deadLetters, error) {
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("meter: WithDeadLetter: the directory of %s does not exist", path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("meter: WithDeadLetter: %w", err)
	}
	return &deadLetters{path: path, f: f}, nil
}

// write appends the lines of dl and syncs the file. A write cut short (a
// full disk) is truncated away, so the file holds whole lines only.
func (d *deadLetters) write(dl []deadLetter, at time.Time) error {
	var buf []byte
	for _, l := range dl {
		b, err := json.Marshal(deadLetterLine{V: 1, Reason: l.reason, At: at.UTC(), Record: l.rec})
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	fi, err := d.f.Stat()
	if err != nil {
		return err
	}
	if _, err = d.f.Write(buf); err == nil {
		err = d.f.Sync()
	}
	if err != nil {
		if terr := d.f.Truncate(fi.Size()); terr != nil {
			err = errors.Join(err, terr)
		}
		return err
	}
	return nil
}

func (d *deadLetters) close() error { return d.f.Close() }

// deadLetter writes dl to the dead-letter file: records that will never be
// delivered. Without one, or when it cannot be written, each is logged at
// error level, with what a person needs to bill it by hand. Either way
// they count in Stats.DeadLettered. flushMu is held.
func (r *Recorder) deadLetter(dl []deadLetter, now time.Time) {
	if len(dl) == 0 {
		return
	}
	r.stats.deadLettered.Add(int64(len(dl)))
	if r.dead != nil {
		err := r.dead.write(dl, now)
		if err == nil {
			r.cfg.logger.Warn("meter: records that will not be delivered were written to the dead-letter file",
				"records", len(dl), "reason", dl[0].reason, "dead_letter", r.dead.path)
			return
		}
		r.cfg.logger.Error("meter: cannot write to the dead-letter file", "dead_letter", r.dead.path, "error", err.Error())
	}
	for _, l := range dl {
		r.cfg.logger.Error("meter: a record will not be delivered", "reason", l.reason,
			"id", l.rec.ID, "tenant_id", l.rec.TenantID, "meter", l.rec.Meter, "value", l.rec.Value,
			"unit", l.rec.Unit, "window_start", l.rec.WindowStart, "dimensions", l.rec.Dimensions)
	}
}
