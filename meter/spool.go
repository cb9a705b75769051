package meter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// The spool file is a queue of JSON lines: records are appended at its end
// and delivered from its head. Each line is an object with "v": 1 and one
// of:
//
//	"record":       a record not yet delivered when the line was written;
//	"delivered_to": a byte offset: every record on a line that starts
//	                before it has been delivered or dead-lettered.
//
// A line of the first release (a bare Record, without "v") is read as a
// record. A line that is none of these (another version, an unknown field,
// no ID, not JSON) is quarantined: appended as it is to the file
// <spool>.bad, with a warning, and left out when the spool is rewritten.
// Lines are read whatever their length.
//
// The file exists only while it holds undelivered records: once the last
// one is delivered, it is removed. <spool>.lock stays; an exclusive lock
// on it (flock) keeps a second process from using the same spool.
const spoolVersion = 1

// spoolLine is one line of the spool, version 1.
type spoolLine struct {
	V           int     `json:"v"`
	Record      *Record `json:"record,omitempty"`
	DeliveredTo *int64  `json:"delivered_to,omitempty"`
}

// spooled is a record read from the spool or written to it, and the offset
// just past its line.
type spooled struct {
	rec Record
	end int64
}

// spool is the spool file of a Recorder. Its user serializes the calls
// (flushMu).
type spool struct {
	path   string
	logger *slog.Logger
	lock   *os.File
	f      *os.File // nil while the file does not exist
	size   int64    // bytes of whole lines in the file
	head   int64    // the records on lines before head are delivered
	// read is where the next records are read from: the records on lines
	// between head and read are in cache, unless they were delivered.
	read  int64
	cache []spooled
	max   int // records in cache at most
	count int // undelivered records in the file
}

// lockSpool locks the spool at path, for load to read it. max bounds
// the records held in memory.
func lockSpool(path string, max int, logger *slog.Logger) (*spool, error) {
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("meter: WithSpool: the directory of %s does not exist", path)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("meter: WithSpool: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("meter: WithSpool: %s is in use by another Recorder, in this process or another (it holds the lock on %s); give each process a spool of its own", path, lock.Name())
		}
		return nil, fmt.Errorf("meter: WithSpool: locking %s: %w", lock.Name(), err)
	}
	return &spool{path: path, logger: logger, lock: lock, max: max}, nil
}

// badLine is a line of the spool that could not be read.
type badLine struct {
	n    int // line number, from 1
	text []byte
	err  error
}

// load reads the locked file: the records after the last delivered_to,
// and the lines to quarantine. Unless the file holds nothing but
// undelivered records on whole lines, it is rewritten with them alone.
// seen, when not nil, is called with the ID of every record in the file,
// delivered or not. Records are not kept in memory: a spool of a long
// outage may hold millions.
func (s *spool) load(seen func(id string)) error {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("meter: spool: %w", err)
	}
	var (
		starts  []int64 // of the record lines
		bad     []badLine
		head    int64
		size    int64
		rewrite bool // blank lines, delivered_to, first-release lines, a last line cut short
	)
	err = eachLine(f, func(n int, line []byte, start int64, whole bool) {
		size = start + int64(len(line)) + 1
		if !whole {
			rewrite = true
			size--
		}
		if len(bytes.TrimSpace(line)) == 0 {
			rewrite = true
			return
		}
		l, legacy, err := parseSpoolLine(line)
		switch {
		case err != nil:
			bad = append(bad, badLine{n, bytes.Clone(line), err})
		case l.Record != nil:
			if seen != nil {
				seen(l.Record.ID)
			}
			starts = append(starts, start)
			rewrite = rewrite || legacy
		default:
			head = max(head, *l.DeliveredTo)
			rewrite = true
		}
	})
	if err != nil {
		f.Close()
		return err
	}
	if len(bad) > 0 {
		if err := s.quarantine(bad); err != nil {
			f.Close()
			return err
		}
	}
	count := len(starts) - sort.Search(len(starts), func(i int) bool { return starts[i] >= head })
	if !rewrite && len(bad) == 0 {
		s.f, s.size, s.count = f, size, count
		return nil
	}
	defer f.Close()
	if count == 0 {
		return s.remove()
	}
	// Rewritten whole, through a temporary file renamed over it: a crash
	// leaves the old file or the new one.
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("meter: spool: %w", err)
	}
	w := bufio.NewWriterSize(tmp, 64<<10)
	var buf []byte
	err = eachLine(f, func(_ int, line []byte, start int64, _ bool) {
		if start < head {
			return
		}
		if l, _, err := parseSpoolLine(line); err == nil && l.Record != nil {
			buf, _ = appendSpoolRecords(buf[:0], []Record{*l.Record}, nil, 0)
			w.Write(buf)
		}
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("meter: spool: rewriting %s: %w", s.path, err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		tmp.Close()
		return fmt.Errorf("meter: spool: %w", err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		tmp.Close()
		return fmt.Errorf("meter: spool: %w", err)
	}
	s.f, s.size, s.count = tmp, fi.Size(), count
	return nil
}

// eachLine calls fn with every line of f from its start: its number from
// 1, its bytes without the newline (valid until fn returns), its offset,
// and whether it ended with a newline.
func eachLine(f *os.File, fn func(n int, line []byte, start int64, whole bool)) error {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, math.MaxInt64), 64<<10)
	var (
		line []byte
		off  int64
	)
	for n := 1; ; n++ {
		var (
			whole bool
			err   error
		)
		line, whole, err = readLine(br, line)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("meter: spool: %w", err)
		}
		fn(n, line, off, whole)
		off += int64(len(line)) + 1
	}
}

// readLine returns the next line of br without its newline, in buf's
// memory, and whether it ended with one; io.EOF when there is none. A
// line may be of any length.
func readLine(br *bufio.Reader, buf []byte) ([]byte, bool, error) {
	buf = buf[:0]
	for {
		part, err := br.ReadSlice('\n')
		buf = append(buf, part...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if len(buf) == 0 {
				return nil, false, io.EOF
			}
			return buf, false, nil
		default:
			return nil, false, err
		}
	}
}

// parseSpoolLine reads one line strictly: version 1 with exactly one of
// its fields, or a bare record of the first release (legacy).
func parseSpoolLine(line []byte) (l spoolLine, legacy bool, err error) {
	// What this library writes reads in one pass; the rest is looked at
	// again, for its version and a clear error.
	if strictUnmarshal(line, &l) == nil && l.V == spoolVersion {
		return l, false, checkSpoolLine(&l)
	}
	l = spoolLine{}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(line, &probe); err != nil {
		return l, false, errors.New("not a JSON object")
	}
	v, ok := probe["v"]
	if !ok {
		var rec Record
		if err := strictUnmarshal(line, &rec); err != nil {
			return l, true, fmt.Errorf("a record without a version: %w", err)
		}
		if err := checkSpooledRecord(&rec); err != nil {
			return l, true, err
		}
		l.V, l.Record = spoolVersion, &rec
		return l, true, nil
	}
	if string(v) != strconv.Itoa(spoolVersion) {
		return l, false, fmt.Errorf("version %s, and this library reads version %d", v, spoolVersion)
	}
	if err := strictUnmarshal(line, &l); err != nil {
		return l, false, err
	}
	return l, false, checkSpoolLine(&l)
}

// checkSpoolLine checks a line of version 1 decoded without error.
func checkSpoolLine(l *spoolLine) error {
	switch {
	case (l.Record == nil) == (l.DeliveredTo == nil):
		return errors.New(`want one of "record" and "delivered_to"`)
	case l.Record != nil:
		return checkSpooledRecord(l.Record)
	case *l.DeliveredTo < 0:
		return errors.New("delivered_to is negative")
	}
	return nil
}

func checkSpooledRecord(rec *Record) error {
	switch {
	case rec.ID == "":
		return errors.New("a record without an id")
	case rec.Meter == "":
		return errors.New("a record without a meter")
	}
	return nil
}

// strictUnmarshal decodes one JSON value into v, refusing unknown fields
// and anything after the value.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// quarantine appends the bad lines to <spool>.bad, synced, and warns about
// them.
func (s *spool) quarantine(bad []badLine) error {
	side := s.path + ".bad"
	f, err := os.OpenFile(side, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("meter: spool: %d lines of %s cannot be read, and cannot be moved aside: %w", len(bad), s.path, err)
	}
	var buf []byte
	for _, b := range bad {
		buf = append(append(buf, b.text...), '\n')
	}
	err = writeAllSync(f, buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("meter: spool: %d lines of %s cannot be read, and cannot be moved aside: %w", len(bad), s.path, err)
	}
	const logged = 10
	for _, b := range bad[:min(len(bad), logged)] {
		s.logger.Warn("meter: a line of the spool is not a record this library reads; it was moved aside and left out",
			"spool", s.path, "line", b.n, "moved_to", side, "error", b.err.Error())
	}
	if len(bad) > logged {
		s.logger.Warn("meter: more lines of the spool moved aside", "spool", s.path, "lines", len(bad)-logged, "moved_to", side)
	}
	return nil
}

// appendSpoolRecords appends the lines of recs to buf; ends, when not nil,
// gets the offset past each line, counted from base.
func appendSpoolRecords(buf []byte, recs []Record, ends []int64, base int64) ([]byte, []int64) {
	for i := range recs {
		l := spoolLine{V: spoolVersion, Record: &recs[i]}
		b, err := json.Marshal(&l)
		if err != nil {
			// A Record always encodes: strings, a finite float, times.
			panic("meter: encoding a spooled record: " + err.Error())
		}
		buf = append(append(buf, b...), '\n')
		if ends != nil {
			ends = append(ends, base+int64(len(buf)))
		}
	}
	return buf, ends
}

// push appends recs to the file and syncs it: once push returns nil they
// are on disk. When the records in cache are all those of the file, recs
// join them, up to max. On an error, the file is cut back to what it held.
func (s *spool) push(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	created := false
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("meter: spool: %w", err)
		}
		s.f, s.size, s.head, s.read, created = f, 0, 0, 0, true
	}
	buf, ends := appendSpoolRecords(nil, recs, make([]int64, 0, len(recs)), s.size)
	if err := s.writeAt(buf); err != nil {
		return err
	}
	if created {
		// The new file's name is on disk too.
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			return fmt.Errorf("meter: spool: %w", err)
		}
	}
	caughtUp := s.read == s.size
	s.size += int64(len(buf))
	s.count += len(recs)
	if caughtUp && len(s.cache)+len(recs) <= s.max {
		for i := range recs {
			s.cache = append(s.cache, spooled{recs[i], ends[i]})
		}
		s.read = s.size
	}
	return nil
}

// writeAt writes buf at the end of the file and syncs it, or cuts the file
// back to its size before the write.
func (s *spool) writeAt(buf []byte) error {
	_, err := s.f.WriteAt(buf, s.size)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			err = errors.Join(err, fmt.Errorf("cutting back a partial write: %w", terr))
		}
		return fmt.Errorf("meter: spool: %w", err)
	}
	return nil
}

// next returns up to n records of the spool from its head, reading them
// from the file if the cache is empty; only records on lines that start
// before until.
func (s *spool) next(n int, until int64) ([]spooled, error) {
	if len(s.cache) == 0 && s.read < min(s.size, until) {
		if err := s.fill(until); err != nil {
			return nil, err
		}
	}
	out := s.cache[:min(n, len(s.cache))]
	for i, r := range out {
		if r.end > until {
			out = out[:i]
			break
		}
	}
	return out, nil
}

// fill reads up to max records from read onwards.
func (s *spool) fill(until int64) error {
	br := bufio.NewReaderSize(io.NewSectionReader(s.f, s.read, s.size-s.read), 64<<10)
	var line []byte
	for len(s.cache) < s.max && s.read < until {
		var err error
		line, _, err = readLine(br, line)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("meter: spool: %w", err)
		}
		end := s.read + int64(len(line)) + 1
		l, _, err := parseSpoolLine(line)
		if err != nil {
			// The file was checked when it was opened and has only been
			// appended to since: it was changed under the lock.
			return fmt.Errorf("meter: spool: %s was changed by something else at offset %d: %w", s.path, s.read, err)
		}
		if l.Record != nil {
			s.cache = append(s.cache, spooled{*l.Record, end})
		}
		s.read = end
	}
	return nil
}

// done drops the first n records of the cache, now delivered or
// dead-lettered (or pushed again), and notes it in the file. When the
// file holds no undelivered record, it is removed.
func (s *spool) done(n int) error {
	if n == 0 {
		return nil
	}
	s.head = s.cache[n-1].end
	s.cache = s.cache[n:]
	s.count -= n
	if s.count == 0 {
		return s.remove()
	}
	// Not synced: a note lost in a crash only sends records again, with
	// their IDs; the next push syncs it anyway.
	b, _ := json.Marshal(spoolLine{V: spoolVersion, DeliveredTo: &s.head})
	b = append(b, '\n')
	if _, err := s.f.WriteAt(b, s.size); err != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			return fmt.Errorf("meter: spool: %w", errors.Join(err, terr))
		}
		return nil // the records will be sent again
	}
	if s.read == s.size {
		s.read += int64(len(b))
	}
	s.size += int64(len(b))
	return nil
}

// remove deletes the file, which holds nothing undelivered.
func (s *spool) remove() error {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.size, s.head, s.read, s.count, s.cache = 0, 0, 0, 0, nil
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("meter: spool: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("meter: spool: %w", err)
	}
	return nil
}

// close syncs and closes the file and releases the lock.
func (s *spool) close() error {
	var err error
	if s.f != nil {
		err = s.f.Sync()
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
		s.f = nil
	}
	if s.lock != nil {
		unlockFile(s.lock)
		s.lock.Close()
		s.lock = nil
	}
	if err != nil {
		return fmt.Errorf("meter: spool: %w", err)
	}
	return nil
}

// writeAllSync writes buf to f from its current offset and syncs it.
func writeAllSync(f *os.File, buf []byte) error {
	if _, err := f.Write(buf); err != nil {
		return err
	}
	return f.Sync()
}
