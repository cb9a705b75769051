package meter

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"
)

// The checkpoint is the open windows' usage, written beside the spool
// (<spool>.checkpoint) every WithCheckpoint interval and whenever windows
// close: a header line, then one line per aggregate. It is written to a
// temporary file, synced, renamed over the last one and the directory
// synced, so the file on disk is always one whole checkpoint. New reads it
// back: its aggregates become records, with the IDs the previous process
// would have given them, and go to the spool.
const checkpointVersion = 1

type checkpointHeader struct {
	V        int               `json:"v"`
	Service  string            `json:"service"`
	Instance string            `json:"instance"`
	Window   int64             `json:"window_ns"`
	OpenFrom int64             `json:"open_from"`
	Meters   []checkpointMeter `json:"meters"`
	Cells    int               `json:"cells"` // lines that follow
}

type checkpointMeter struct {
	Name       string   `json:"name"`
	Unit       string   `json:"unit"`
	Dimensions []string `json:"dimensions,omitempty"`
}

// checkpointCell is one aggregate: Meter is an index in the header's
// meters, Window the start of its window plus its part (see aggKey).
type checkpointCell struct {
	Meter        int      `json:"m"`
	Tenant       string   `json:"t"`
	Unattributed bool     `json:"u,omitempty"`
	Tier         string   `json:"tier,omitempty"`
	Dims         []string `json:"d,omitempty"`
	Window       int64    `json:"w"`
	Value        float64  `json:"x"`
}

// checkpointer writes the checkpoints of a Recorder. Its fields are
// guarded by Recorder.ckptMu.
type checkpointer struct {
	path     string
	cells    []snapCell // reused between checkpoints
	buf      []byte
	openFrom int64 // of the last checkpoint written
	written  bool  // the last checkpoint written is the state on disk
	failing  bool  // the last write failed; logged once
	slow     bool  // the last one took longer than the interval; logged once
}

type snapCell struct {
	k    aggKey
	bits uint64
	tier string
}

func checkpointPath(spool string) string { return spool + ".checkpoint" }

// checkpoint writes the open windows to the checkpoint file, unless
// nothing was added since the last one (force writes it anyway). ckptMu is
// held. On failure, the previous checkpoint stays: it holds only usage
// that is still open, or in the spool (with the same IDs).
func (r *Recorder) checkpoint(force bool) error {
	return r.checkpointAt(force, r.openFrom.Load())
}

// checkpointAt is checkpoint with the first open window (and part) to
// write in the header.
func (r *Recorder) checkpointAt(force bool, openFrom int64) error {
	cp := r.ckpt
	dirty := false
	for i := range r.shards {
		// Cleared before the cells are read: an add that lands after
		// the read sets it again, for the next checkpoint.
		if r.shards[i].dirty.Swap(false) {
			dirty = true
		}
	}
	if !force && !dirty && cp.written && openFrom == cp.openFrom {
		return nil
	}
	began := r.clock.nanos()
	cp.cells = cp.cells[:0]
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.RLock()
		for k, c := range s.m {
			cp.cells = append(cp.cells, snapCell{k, c.bits.Load(), c.tier})
		}
		s.mu.RUnlock()
	}
	cp.buf = r.encodeCheckpoint(cp.buf[:0], openFrom, cp.cells)
	err := writeFileAtomic(cp.path, cp.buf)
	if err != nil {
		cp.written = false
		if !cp.failing {
			r.cfg.logger.Error("meter: cannot write the checkpoint; a crash now loses the usage added since the last one",
				"checkpoint", cp.path, "error", err.Error())
		}
		cp.failing = true
		return err
	}
	if cp.failing {
		r.cfg.logger.Warn("meter: checkpoint written again", "checkpoint", cp.path)
	}
	cp.failing, cp.written, cp.openFrom = false, true, openFrom
	// The bound of WithCheckpoint is the interval plus this: say when it
	// no longer holds (a slow disk, a starved process).
	if took := time.Duration(r.clock.nanos() - began); r.cfg.checkpoint > 0 && took > r.cfg.checkpoint {
		if !cp.slow {
			r.cfg.logger.Warn("meter: a checkpoint took longer than its interval; a crash may lose more than WithCheckpoint's bound",
				"checkpoint", cp.path, "took", took, "interval", r.cfg.checkpoint, "aggregates", len(cp.cells))
		}
		cp.slow = true
	} else {
		cp.slow = false
	}
	return nil
}

// forgetCheckpoint removes the checkpoint file, when it may hold windows
// that have closed since and a new one could not be written: those are
// in the spool now, and once delivered the checkpoint would bring them
// back. Removing needs no room on the disk. ckptMu is held.
func (r *Recorder) forgetCheckpoint() {
	if err := os.Remove(r.ckpt.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.cfg.logger.Error("meter: cannot remove a stale checkpoint", "checkpoint", r.ckpt.path, "error", err.Error())
		return
	}
	r.ckpt.written = false
}

// checkpointLoop writes a checkpoint every WithCheckpoint interval in
// which usage was added, apart from the delivery loop, so that a sink that
// hangs does not hold it up.
func (r *Recorder) checkpointLoop() {
	defer close(r.ckptDone)
	t := time.NewTicker(r.cfg.checkpoint)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.ckptMu.Lock()
		r.checkpoint(false)
		r.ckptMu.Unlock()
	}
}

// encodeCheckpoint appends the checkpoint of cells to b. The cell lines
// are written by hand: this runs every interval, over every open
// aggregate.
func (r *Recorder) encodeCheckpoint(b []byte, openFrom int64, cells []snapCell) []byte {
	r.byIndexMu.Lock()
	meters := r.byIndex[:len(r.byIndex):len(r.byIndex)]
	r.byIndexMu.Unlock()
	h := checkpointHeader{
		V: checkpointVersion, Service: r.cfg.service, Instance: r.cfg.instance,
		Window: int64(r.cfg.window), OpenFrom: openFrom, Cells: len(cells),
		Meters: make([]checkpointMeter, len(meters)),
	}
	for i, m := range meters {
		h.Meters[i] = checkpointMeter{Name: m.Name, Unit: m.Unit, Dimensions: m.Dimensions}
	}
	hb, _ := json.Marshal(&h)
	b = append(append(b, hb...), '\n')
	for _, c := range cells {
		m := meters[c.k.meter]
		b = append(b, `{"m":`...)
		b = strconv.AppendInt(b, int64(c.k.meter), 10)
		b = append(b, `,"t":`...)
		b = appendJSONString(b, c.k.tenant)
		if c.k.unattributed {
			b = append(b, `,"u":true`...)
		}
		if c.tier != "" {
			b = append(b, `,"tier":`...)
			b = appendJSONString(b, c.tier)
		}
		if len(m.Dimensions) > 0 {
			tuple := m.tuple(c.k.tuple)
			b = append(b, `,"d":[`...)
			for i := range m.Dimensions {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, tuple[i])
			}
			b = append(b, ']')
		}
		b = append(b, `,"w":`...)
		b = strconv.AppendInt(b, c.k.window, 10)
		b = append(b, `,"x":`...)
		b = strconv.AppendFloat(b, finite(math.Float64frombits(c.bits)), 'g', -1, 64)
		b = append(b, "}\n"...)
	}
	return b
}

// finite returns v, or the largest float of its sign for an infinity: a
// sum of finite values can overflow, and JSON has no infinity.
func finite(v float64) float64 {
	switch {
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}

// appendJSONString appends s as a JSON string, as encoding/json writes it
// (invalid UTF-8 becomes U+FFFD) but without escaping HTML characters.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				switch c {
				case '\n':
					b = append(b, '\\', 'n')
				case '\r':
					b = append(b, '\\', 'r')
				case '\t':
					b = append(b, '\\', 't')
				default:
					b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				}
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// writeFileAtomic replaces the file at path with data: a synced temporary
// file renamed over it, then the directory synced.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	err = writeAllSync(tmp, data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return syncDir(dir)
}

// recovered is what a checkpoint of a previous process holds.
type recovered struct {
	instance string
	openFrom int64 // from which adds would go, in that process
	last     int64 // the latest aggregate's window and part; 0 if none
	records  []Record
}

// readCheckpoint reads the checkpoint at path; nil when there is none. A
// checkpoint that cannot be read whole is moved to path+".bad" with a
// warning, and nothing is recovered from it.
func (r *Recorder) readCheckpoint(path string) (*recovered, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("meter: checkpoint: %w", err)
	}
	rec, perr := parseCheckpoint(bufio.NewReaderSize(f, 64<<10))
	f.Close()
	if perr != nil {
		bad := path + ".bad"
		if err := os.Rename(path, bad); err != nil {
			return nil, fmt.Errorf("meter: checkpoint %s cannot be read (%v), and cannot be moved aside: %w", path, perr, err)
		}
		r.cfg.logger.Error("meter: the checkpoint cannot be read; it was moved aside and the usage it held is not recovered",
			"checkpoint", path, "moved_to", bad, "error", perr.Error())
		return nil, nil
	}
	return rec, nil
}

func parseCheckpoint(br *bufio.Reader) (*recovered, error) {
	line, whole, err := readLine(br, nil)
	if err != nil || !whole {
		return nil, errors.New("no header line")
	}
	var h checkpointHeader
	if err := strictUnmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	switch {
	case h.V != checkpointVersion:
		return nil, fmt.Errorf("version %d, and this library reads version %d", h.V, checkpointVersion)
	case h.Window <= 0 || h.Instance == "" || h.Service == "":
		return nil, errors.New("header without its window, service or instance")
	}
	out := &recovered{instance: h.Instance, openFrom: h.OpenFrom}
	window := time.Duration(h.Window)
	for n := range h.Cells {
		line, whole, err = readLine(br, line)
		if err != nil || !whole {
			return nil, fmt.Errorf("%d aggregates of %d: the file is cut short", n, h.Cells)
		}
		var c checkpointCell
		if err := strictUnmarshal(line, &c); err != nil {
			return nil, fmt.Errorf("aggregate %d: %w", n+1, err)
		}
		if c.Meter < 0 || c.Meter >= len(h.Meters) || len(c.Dims) != len(h.Meters[c.Meter].Dimensions) {
			return nil, fmt.Errorf("aggregate %d: no such meter or dimensions", n+1)
		}
		m := h.Meters[c.Meter]
		start := alignWindow(c.Window, h.Window)
		rec := Record{
			TenantID: c.Tenant, Unattributed: c.Unattributed, Tier: c.Tier,
			Meter: m.Name, Value: c.Value, Unit: m.Unit,
			WindowStart: time.Unix(0, start).UTC(), WindowEnd: time.Unix(0, start).UTC().Add(window),
			Service: h.Service, Instance: h.Instance,
		}
		if len(m.Dimensions) > 0 {
			rec.Dimensions = make(map[string]string, len(m.Dimensions))
			for i, d := range m.Dimensions {
				rec.Dimensions[d] = c.Dims[i]
			}
		}
		rec.ID = recordID(rec.Service, rec.Instance, rec.TenantID, rec.Unattributed, rec.Meter, rec.Dimensions, rec.WindowStart, c.Window-start)
		out.records = append(out.records, rec)
		out.last = max(out.last, c.Window)
	}
	if _, _, err := readLine(br, line); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than the %d aggregates the header announces", h.Cells)
	}
	return out, nil
}

// recover delivers, through the spool, the usage a checkpoint of a
// previous process holds, except what that process had already put in the
// spool; and when this process has the same instance, moves its first
// window past the recovered ones, so that no two records share an ID.
// Called by New, before any add.
func (r *Recorder) recover(rc *recovered) error {
	if rc.instance == r.cfg.instance {
		r.openFrom.Store(max(r.openFrom.Load(), rc.openFrom, rc.last+1))
	}
	if len(rc.records) == 0 {
		return nil
	}
	if err := r.spool.push(rc.records); err != nil {
		return fmt.Errorf("meter: recovering the checkpoint: %w", err)
	}
	r.stats.spooled.Add(int64(len(rc.records)))
	r.cfg.logger.Warn("meter: usage of a previous run recovered from its checkpoint, to be delivered",
		"records", len(rc.records), "instance", rc.instance, "checkpoint", r.ckpt.path)
	return nil
}
