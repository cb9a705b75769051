package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// JSONHandler is a [slog.Handler] that writes records as lines of JSON,
// the same bytes [slog.JSONHandler] writes for the same records and
// options, in less time: the common kinds of values are encoded without
// encoding/json and without [slog.Record]'s callbacks, and under a
// [Handler], whose next handler it is meant to be, lines are encoded from
// the Handler's and [AccessLog]'s attributes directly.
//
// With [slog.HandlerOptions.ReplaceAttr] or AddSource set, it hands every
// record to a slog.JSONHandler, which writes them as fast as it would
// alone.
//
// Each record is one call to the writer's Write, serialised with the other
// records of the handlers derived from the same [NewJSONHandler] (by
// WithAttrs and WithGroup). Make one with NewJSONHandler; a JSONHandler is
// safe for concurrent use.
type JSONHandler struct {
	w     io.Writer
	mu    *sync.Mutex // shared by the handlers derived from one NewJSONHandler
	level slog.Leveler

	// As slog's handler keeps them: the attributes of WithAttrs, encoded
	// once, with the groups opened before them; all groups, of which the
	// first opened are open in pre.
	pre    []byte
	groups []string
	opened int

	// slog is the handler every record goes to when the options ask for
	// what only slog's handler does; nil otherwise.
	slog slog.Handler
}

var _ slog.Handler = (*JSONHandler)(nil)

// NewJSONHandler returns a JSONHandler writing to w, with opts as
// [slog.NewJSONHandler] takes them; nil means the defaults (level INFO).
//
//	logger := slog.New(logging.NewHandler(logging.NewJSONHandler(os.Stdout, nil)))
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) *JSONHandler {
	if w == nil {
		panic("logging: NewJSONHandler needs a writer")
	}
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	if opts.ReplaceAttr != nil || opts.AddSource {
		return &JSONHandler{slog: slog.NewJSONHandler(w, opts)}
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &JSONHandler{w: w, mu: new(sync.Mutex), level: level}
}

// Enabled reports whether level is at least the handler's level.
func (h *JSONHandler) Enabled(ctx context.Context, level slog.Level) bool {
	if h.slog != nil {
		return h.slog.Enabled(ctx, level)
	}
	return level >= h.level.Level()
}

// WithAttrs returns a JSONHandler that also writes attrs, encoded now.
func (h *JSONHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if h.slog != nil {
		return &JSONHandler{slog: h.slog.WithAttrs(attrs)}
	}
	empty := 0
	for _, a := range attrs {
		if isEmptyGroup(a.Value) {
			empty++
		}
	}
	if empty == len(attrs) {
		return h
	}
	h2 := h.clone()
	l := jsonLine{buf: slices.Clip(h.pre)}
	l.sep = len(h.pre) > 0 && h.pre[len(h.pre)-1] != '{'
	for _, g := range h.groups[h.opened:] {
		l.openGroup(g)
	}
	wrote := false
	for _, a := range attrs {
		if l.attr(a) {
			wrote = true
		}
	}
	if !wrote {
		// As slog's handler: the groups stay to be opened, before the
		// attributes of a later WithAttrs or of a record.
		return h2
	}
	h2.pre = l.buf
	h2.opened = len(h.groups)
	return h2
}

// WithGroup returns a JSONHandler that writes the attributes that follow
// in the group name. As with slog's handler, an empty name is a group with
// an empty key: [slog.Logger.WithGroup] is where "" is ignored.
func (h *JSONHandler) WithGroup(name string) slog.Handler {
	if h.slog != nil {
		return &JSONHandler{slog: h.slog.WithGroup(name)}
	}
	h2 := h.clone()
	h2.groups = append(h2.groups, name)
	return h2
}

func (h *JSONHandler) clone() *JSONHandler {
	h2 := *h
	h2.pre = slices.Clip(h.pre)
	h2.groups = slices.Clip(h.groups)
	return &h2
}

// Handle writes r as one line.
func (h *JSONHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.slog != nil {
		return h.slog.Handle(ctx, r)
	}
	l := h.begin(r.Time, r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		l.add(a)
		return true
	})
	return h.end(&l)
}

// handleAttrs writes a line of attrs, as Handle writes a record with
// them, without making one. The keys of the first schema attributes are
// keys of the package's schema, written without looking for anything to
// escape (see field).
func (h *JSONHandler) handleAttrs(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr, schema int) error {
	if h.slog != nil {
		r := slog.NewRecord(t, level, msg, 0)
		r.AddAttrs(attrs...)
		return h.slog.Handle(ctx, r)
	}
	l := h.begin(t, level, msg)
	for _, a := range attrs[:schema] {
		l.field(a)
	}
	for _, a := range attrs[schema:] {
		l.add(a)
	}
	return h.end(&l)
}

// begin starts a line with the time, the level, the message and the
// attributes of WithAttrs, and opens the groups that follow them. Then
// the record's attributes go to add, and the line to end.
func (h *JSONHandler) begin(t time.Time, level slog.Level, msg string) jsonLine {
	p := bufPool.Get().(*[]byte)
	l := jsonLine{buf: append((*p)[:0], '{'), pooled: p}
	if !t.IsZero() {
		l.plainKey(slog.TimeKey)
		l.recordTime(t)
	}
	l.plainKey(slog.LevelKey)
	l.string(levelString(level))
	l.plainKey(slog.MessageKey)
	l.string(msg)
	if len(h.pre) > 0 {
		l.buf = append(l.buf, ',')
		l.buf = append(l.buf, h.pre...)
		l.sep = h.pre[len(h.pre)-1] != '{'
	}
	l.start = len(l.buf)
	for _, g := range h.groups[h.opened:] {
		l.openGroup(g)
	}
	return l
}

// end closes l's groups and writes it.
func (h *JSONHandler) end(l *jsonLine) error {
	defer func() {
		// A line far longer than most would keep its memory in the pool.
		if cap(l.buf) <= 16<<10 {
			*l.pooled = l.buf
			bufPool.Put(l.pooled)
		}
	}()
	open := len(h.groups)
	if !l.wrote {
		// No attribute: the groups opened for them go.
		l.buf = l.buf[:l.start]
		open = h.opened
	}
	for range open {
		l.buf = append(l.buf, '}')
	}
	l.buf = append(l.buf, '}', '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(l.buf)
	return err
}

func levelString(l slog.Level) string {
	switch l {
	case slog.LevelDebug:
		return "DEBUG"
	case slog.LevelInfo:
		return "INFO"
	case slog.LevelWarn:
		return "WARN"
	case slog.LevelError:
		return "ERROR"
	}
	return l.String()
}

// jsonLine is a line being encoded. It follows the steps of slog's
// handler, so that even the lines where slog's output is odd (a group
// whose attributes were all empty takes the comma after it away) come
// out the same. It lives on its caller's stack: appending costs no write
// barrier.
type jsonLine struct {
	buf    []byte
	sep    bool // a comma goes before the next key
	start  int  // where the record's attributes start, with their groups
	wrote  bool // an attribute of the record was written
	pooled *[]byte
}

// bufPool holds the buffers of lines.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// add writes a record's attribute. As a Record drops empty groups when
// they are added, so does add.
func (l *jsonLine) add(a slog.Attr) {
	if isEmptyGroup(a.Value) {
		return
	}
	if l.attr(a) {
		l.wrote = true
	}
}

// field is add for an attribute whose key is a key of the package's
// schema (KeyTenantID, KeyMethod, their OpenTelemetry names...), which
// are plain ASCII with nothing to escape (TestSchemaKeysArePlain): the
// key is written as it is.
//
// The line is built in a local slice, with the punctuation between the
// key and the value appended at once.
func (l *jsonLine) field(a slog.Attr) {
	kind := a.Value.Kind()
	if kind != slog.KindString && kind != slog.KindInt64 {
		l.add(a)
		return
	}
	b := l.buf
	if l.sep {
		b = append(b, ',', '"')
	} else {
		b = append(b, '"')
	}
	b = append(b, a.Key...)
	if kind == slog.KindString {
		b = append(b, '"', ':', '"')
		b = appendJSONString(b, a.Value.String())
		b = append(b, '"')
	} else {
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, a.Value.Int64(), 10)
	}
	l.buf, l.sep, l.wrote = b, true, true
}

// attr writes a, and reports whether slog's handler counts it as written.
func (l *jsonLine) attr(a slog.Attr) bool {
	v := a.Value
	switch v.Kind() {
	case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindFloat64,
		slog.KindBool, slog.KindDuration, slog.KindTime:
		// The common kinds, none of which needs the checks below.
		l.key(a.Key)
		l.value(v)
		return true
	}
	if v.Kind() == slog.KindLogValuer {
		v = v.Resolve()
	}
	if a.Key == "" && v.Kind() == slog.KindAny && v.Any() == nil {
		return false // the zero Attr
	}
	if v.Kind() == slog.KindAny {
		if src, ok := v.Any().(*slog.Source); ok {
			if src == nil || *src == (slog.Source{}) {
				return false
			}
			v = sourceGroup(src)
		}
	}
	if v.Kind() != slog.KindGroup {
		l.key(a.Key)
		l.value(v)
		return true
	}
	as := v.Group()
	if len(as) == 0 {
		return true // written as nothing, but counted
	}
	pos := len(l.buf)
	if a.Key != "" {
		l.openGroup(a.Key)
	}
	wrote := false
	for _, a := range as {
		if l.attr(a) {
			wrote = true
		}
	}
	if !wrote {
		l.buf = l.buf[:pos] // the separator state is not restored, as in slog
		return false
	}
	if a.Key != "" {
		l.buf = append(l.buf, '}')
		l.sep = true
	}
	return true
}

func isEmptyGroup(v slog.Value) bool {
	return v.Kind() == slog.KindGroup && len(v.Group()) == 0
}

// sourceGroup is the group slog writes for a source location.
func sourceGroup(s *slog.Source) slog.Value {
	as := make([]slog.Attr, 0, 3)
	if s.Function != "" {
		as = append(as, slog.String("function", s.Function))
	}
	if s.File != "" {
		as = append(as, slog.String("file", s.File))
	}
	if s.Line != 0 {
		as = append(as, slog.Int("line", s.Line))
	}
	return slog.GroupValue(as...)
}

func (l *jsonLine) openGroup(name string) {
	l.key(name)
	l.buf = append(l.buf, '{')
	l.sep = false
}

// plainKey is key for a key known to need no escaping.
func (l *jsonLine) plainKey(k string) {
	b := l.buf
	if l.sep {
		b = append(b, ',', '"')
	} else {
		b = append(b, '"')
	}
	b = append(b, k...)
	l.buf, l.sep = append(b, '"', ':'), true
}

func (l *jsonLine) key(k string) {
	b := l.buf
	if l.sep {
		b = append(b, ',', '"')
	} else {
		b = append(b, '"')
	}
	b = appendJSONString(b, k)
	l.buf, l.sep = append(b, '"', ':'), true
}

func (l *jsonLine) string(s string) {
	b := append(l.buf, '"')
	b = appendJSONString(b, s)
	l.buf = append(b, '"')
}

// value writes v, of any kind but group and LogValuer.
func (l *jsonLine) value(v slog.Value) {
	switch v.Kind() {
	case slog.KindString:
		l.string(v.String())
	case slog.KindInt64:
		l.buf = strconv.AppendInt(l.buf, v.Int64(), 10)
	case slog.KindUint64:
		l.buf = strconv.AppendUint(l.buf, v.Uint64(), 10)
	case slog.KindFloat64:
		l.float(v.Float64())
	case slog.KindBool:
		l.buf = strconv.AppendBool(l.buf, v.Bool())
	case slog.KindDuration:
		l.buf = strconv.AppendInt(l.buf, int64(v.Duration()), 10)
	case slog.KindTime:
		l.time(v.Time())
	default:
		l.any(v.Any())
	}
}

// time writes t as slog does: in RFC 3339 with nanoseconds, after an
// error when the year has not four digits.
func (l *jsonLine) time(t time.Time) {
	if y := t.Year(); y < 0 || y >= 10000 {
		l.buf = append(l.buf, `"!ERROR:time.Time year outside of range [0,9999]"`...)
	}
	l.buf = append(l.buf, '"')
	l.buf = t.AppendFormat(l.buf, time.RFC3339Nano)
	l.buf = append(l.buf, '"')
}

// recordTime is time for the time of a record, with its second's text
// from the cache: records come in the same second one after another,
// which the times of attributes need not do.
func (l *jsonLine) recordTime(t time.Time) {
	sec := secondOf(t)
	if sec == nil {
		l.time(t)
		return
	}
	l.buf = append(l.buf, '"')
	l.buf = append(l.buf, sec.clock[:]...)
	if ns := t.Nanosecond(); ns != 0 {
		// As RFC3339Nano: up to nine digits, without trailing zeros.
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := len(frac)
		for frac[n-1] == '0' {
			n--
		}
		l.buf = append(l.buf, frac[:n]...)
	}
	l.buf = append(l.buf, sec.zone...)
	l.buf = append(l.buf, '"')
}

// second is the RFC 3339 text of one second in one location: its date
// and clock, and its zone. Lines written in the same second share it, so
// that most record times cost no calendar arithmetic.
type second struct {
	unix  int64
	loc   *time.Location
	clock [len("2006-01-02T15:04:05")]byte
	zone  string // "Z" or "+07:00"
}

var lastSecond atomic.Pointer[second]

// secondOf returns the text of t's second, or nil when its year has not
// four digits.
func secondOf(t time.Time) *second {
	unix, loc := t.Unix(), t.Location()
	if s := lastSecond.Load(); s != nil && s.unix == unix && s.loc == loc {
		return s
	}
	text := t.AppendFormat(make([]byte, 0, 32), time.RFC3339)
	s := &second{unix: unix, loc: loc}
	if len(text) <= len(s.clock) || text[0] == '-' || text[4] != '-' {
		return nil // a year before 0 or after 9999
	}
	copy(s.clock[:], text)
	s.zone = string(text[len(s.clock):])
	lastSecond.Store(s)
	return s
}

// float writes f as encoding/json does: like strconv's shortest 'f', with
// an exponent below 1e-6 and from 1e21, the exponent without a leading
// zero. encoding/json refuses NaN and infinities, and slog writes its
// error instead.
func (l *jsonLine) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		l.string("!ERROR:json: unsupported value: " + strconv.FormatFloat(f, 'g', -1, 64))
		return
	}
	if b, ok := appendThousandths(l.buf, f); ok {
		l.buf = b
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	n := len(l.buf)
	l.buf = strconv.AppendFloat(l.buf, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7
		if b := l.buf[n:]; len(b) >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			l.buf = l.buf[:len(l.buf)-1]
		}
	}
}

// appendThousandths appends f as float writes it when f is a whole
// number of thousandths under 10^12 in magnitude, other than zero (the
// access log's duration_ms), and reports whether it was one: the number
// of thousandths with the point put in and the trailing zeros dropped,
// without strconv's search for the shortest digits. That decimal reads
// back as f, and it is the shortest that does: it has at most 15
// significant digits, and no two decimals of 15 digits or fewer read back
// as the same float64.
func appendThousandths(b []byte, f float64) ([]byte, bool) {
	if f == 0 || !(f > -1e12 && f < 1e12) {
		return b, false
	}
	n := math.Round(f * 1000)
	if n/1000 != f {
		return b, false
	}
	i := int64(n)
	if i < 0 {
		b = append(b, '-')
		i = -i
	}
	b = strconv.AppendInt(b, i/1000, 10)
	if frac := i % 1000; frac != 0 {
		d := [4]byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
		k := len(d)
		for d[k-1] == '0' {
			k--
		}
		b = append(b, d[:k]...)
	}
	return b, true
}

// any writes x as slog does: an error that does not marshal itself as its
// text, anything else through encoding/json without HTML escaping, and
// what goes wrong on the way as a string.
func (l *jsonLine) any(x any) {
	defer func() {
		if p := recover(); p != nil {
			if v := reflect.ValueOf(x); v.Kind() == reflect.Pointer && v.IsNil() {
				l.string("<nil>")
				return
			}
			l.string(fmt.Sprintf("!PANIC: %v", p))
		}
	}()
	if err, ok := x.(error); ok {
		if _, marshals := x.(json.Marshaler); !marshals {
			l.string(err.Error())
			return
		}
	}
	e := encoderPool.Get().(*anyEncoder)
	defer e.free()
	if err := e.enc.Encode(x); err != nil {
		l.string(fmt.Sprintf("!ERROR:%v", err))
		return
	}
	l.buf = append(l.buf, bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))...)
}

// anyEncoder encodes values as slog's JSON handler does.
type anyEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoderPool = sync.Pool{New: func() any {
	e := new(anyEncoder)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

func (e *anyEncoder) free() {
	if e.buf.Cap() > 16<<10 {
		return
	}
	e.buf.Reset()
	encoderPool.Put(e)
}

// appendJSONString appends s escaped as slog escapes a JSON string: '"',
// '\\' and control characters, invalid UTF-8 as U+FFFD, U+2028 and U+2029;
// not <, > and &.
func appendJSONString(b []byte, s string) []byte {
	// Most strings (keys, IDs, routes) need no escaping: they are checked
	// a word at a time, the last bytes in one more word that overlaps the
	// one before, or a byte at a time when shorter than a word, and
	// appended whole.
	if n := len(s); n >= 8 {
		i := 0
		for ; i+8 <= n; i += 8 {
			if !plain8(s[i:]) {
				return appendJSONEscaped(b, s, i)
			}
		}
		if i < n && !plain8(s[n-8:]) {
			return appendJSONEscaped(b, s, i)
		}
	} else {
		for i := 0; i < n; i++ {
			if !plainByte[s[i]] {
				return appendJSONEscaped(b, s, 0)
			}
		}
	}
	return append(b, s...)
}

// plainByte tells the bytes a JSON string holds as they are: printable
// ASCII other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONEscaped is appendJSONString for s, of which the first i bytes
// need no escaping (i is a multiple of 8).
func appendJSONEscaped(b []byte, s string, i int) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i < len(s) {
		if i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// plain8 reports whether the first 8 bytes of s are all printable ASCII
// other than '"' and '\\', which a JSON string holds as they are. Eight
// bytes at a time, so that the common string costs a few instructions per
// word.
func plain8(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	// A byte below n shows as a high bit of (x - n*ones) &^ x, for n ≤ 128;
	// a byte equal to c as one below 1 in x ^ c*ones.
	below := func(x, n uint64) uint64 { return (x - n*ones) &^ x }
	return (x|below(x, ' ')|below(x^('"'*ones), 1)|below(x^('\\'*ones), 1))&highs == 0
}
