package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/tenancykit/tenancy/logging"
)

// twin is slog's JSON handler and ours, each writing to its own buffer,
// given the same calls.
type twin struct {
	slog, ours       slog.Handler
	slogBuf, oursBuf *bytes.Buffer
}

func newTwin(opts *slog.HandlerOptions) *twin {
	sb, ob := new(bytes.Buffer), new(bytes.Buffer)
	return &twin{slog.NewJSONHandler(sb, opts), logging.NewJSONHandler(ob, opts), sb, ob}
}

// then applies f to both handlers.
func (tw *twin) then(f func(slog.Handler) slog.Handler) *twin {
	return &twin{f(tw.slog), f(tw.ours), tw.slogBuf, tw.oursBuf}
}

// handle gives r to both handlers.
func (tw *twin) handle(ctx context.Context, r slog.Record) {
	_ = tw.slog.Handle(ctx, r.Clone())
	_ = tw.ours.Handle(ctx, r.Clone())
}

// same fails t unless both handlers wrote the same bytes, and clears them.
func (tw *twin) same(t testing.TB, what string) {
	t.Helper()
	want, got := tw.slogBuf.String(), tw.oursBuf.String()
	tw.slogBuf.Reset()
	tw.oursBuf.Reset()
	if got != want {
		t.Errorf("%s:\nslog: %q\nours: %q", what, want, got)
	}
}

// step is a WithAttrs (group == "" and !isGroup) or WithGroup call.
type step struct {
	group   string
	isGroup bool
	attrs   []slog.Attr
}

func (s step) apply(h slog.Handler) slog.Handler {
	if s.isGroup {
		return h.WithGroup(s.group)
	}
	return h.WithAttrs(s.attrs)
}

func (s step) String() string {
	if s.isGroup {
		return fmt.Sprintf("WithGroup(%q)", s.group)
	}
	return fmt.Sprintf("WithAttrs(%v)", s.attrs)
}

func withGroup(name string) step            { return step{group: name, isGroup: true} }
func withAttrs(attrs ...slog.Attr) step     { return step{attrs: attrs} }
func group(key string, as ...any) slog.Attr { return slog.Group(key, as...) }

// Values of every kind and shape the handlers treat apart.
type (
	textValuer  string
	groupValuer struct{}
	emptyValuer struct{}
	loopValuer  struct{}
	plainError  struct{ msg string }
	jsonError   struct{}
	htmlJSON    struct{}
	panicJSON   struct{}
	shipment    struct {
		ID    int               `json:"id"`
		Items []string          `json:"items"`
		Notes map[string]string `json:"notes,omitempty"`
		At    time.Time         `json:"at"`
	}
)

func (v textValuer) LogValue() slog.Value { return slog.StringValue("valued " + string(v)) }
func (groupValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("a", 1), slog.Any("inner", textValuer("x")))
}
func (emptyValuer) LogValue() slog.Value       { return slog.GroupValue() }
func (loopValuer) LogValue() slog.Value        { return slog.AnyValue(loopValuer{}) }
func (e *plainError) Error() string            { return e.msg } // panics on nil
func (jsonError) Error() string                { return "ignored" }
func (jsonError) MarshalJSON() ([]byte, error) { return []byte(`{"err":"as json"}`), nil }
func (htmlJSON) MarshalJSON() ([]byte, error)  { return []byte(`"<b>&</b>"`), nil }
func (panicJSON) MarshalJSON() ([]byte, error) { panic("marshal exploded") }

func floatAttrs(fs ...float64) []slog.Attr {
	as := make([]slog.Attr, len(fs))
	for i, f := range fs {
		as[i] = slog.Float64(fmt.Sprintf("f%d", i), f)
	}
	return as
}

// awkwardStrings hold every class of character JSON escaping treats apart.
var awkwardStrings = []string{
	"", "plain", `quote " backslash \ slash /`, "\x00\x01\x1f\x7f", "\n\r\t\b\f\v",
	"<html>&amp;</html>", "line\u2028para\u2029", "invalid \xff\xfe utf8", "\xed\xa0\x80",
	"日本語", "emoji 😀", "cut \xe6\x97", "\xf4\x90\x80\x80", "\u00e9\u0301", "\ufffd", "}{\",:",
}

var awkwardFloats = []float64{
	0, math.Copysign(0, -1), 1, -1.5, 0.1 + 0.2, 1e20, 1e21, -1e21, 123456789.123, 1e-6, 1e-7,
	-1e-7, 1.5e-10, 1e100, math.MaxFloat64, math.SmallestNonzeroFloat64, 5e-324, 1 << 53,
	float64(1<<53) + 2, 3.14159, 0.000001234, 999999999999999999999.0,
	math.NaN(), math.Inf(1), math.Inf(-1),
}

func awkwardTimes() []time.Time {
	return []time.Time{
		testTime,
		testTime.In(time.FixedZone("CET", 3600)), // the same second elsewhere
		testTime.Add(999999999),
		testTime.Add(10),
		time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 100000000, time.FixedZone("IST", 5*3600+30*60)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -7*3600)),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Now(), // with a monotonic reading
		{},
	}
}

// valueAttrs returns attributes with values of every kind.
func valueAttrs() []slog.Attr {
	var nilErr *plainError
	var nilMap map[string]int
	as := []slog.Attr{
		slog.Int64("min", math.MinInt64), slog.Int64("max", math.MaxInt64), slog.Int("zero", 0),
		slog.Uint64("umax", math.MaxUint64), slog.Uint64("u0", 0),
		slog.Bool("t", true), slog.Bool("f", false),
		slog.Duration("d", 1500*time.Millisecond), slog.Duration("dneg", -time.Nanosecond),
		slog.Duration("dmax", math.MaxInt64),
		slog.Any("valuer", textValuer("v")), slog.Any("group-valuer", groupValuer{}),
		slog.Any("loop-valuer", loopValuer{}), slog.Any("empty-valuer", emptyValuer{}),
		slog.Any("err", errors.New("boom <x> & \"y\"")), slog.Any("wrapped", fmt.Errorf("ctx: %w", io.EOF)),
		slog.Any("json-err", jsonError{}), slog.Any("nil-err", nilErr),
		slog.Any("struct", shipment{ID: 7, Items: []string{"a", "<b>"}, At: testTime}),
		slog.Any("struct-ptr", &shipment{Notes: map[string]string{"z": "1", "a": "2"}}),
		slog.Any("map", map[string]any{"b": 1, "a": []any{nil, 1.5, "x"}}),
		slog.Any("nil", nil), slog.Any("nil-map", nilMap), slog.Any("slice", []int{1, 2, 3}),
		slog.Any("bytes", []byte("hi\x00")), slog.Any("chan", make(chan int)), slog.Any("func", func() {}),
		slog.Any("html", htmlJSON{}), slog.Any("panics", panicJSON{}),
		slog.Any("raw-bad", json.RawMessage(`{bad`)), slog.Any("raw", json.RawMessage(`{"a" : 1}`)),
		slog.Any("level", slog.LevelWarn+1), slog.Any("float32", float32(0.1)),
		slog.Any("source", &slog.Source{Function: "f", File: "x.go", Line: 3}),
		slog.Any("source-file", &slog.Source{File: "x.go"}), slog.Any("source-empty", &slog.Source{}),
		slog.Any("source-nil", (*slog.Source)(nil)), slog.Any("source-value", slog.Source{Line: 1}),
		slog.Any("k\xffey", "v"), slog.String("", "empty key"), slog.Int("", 0),
		{}, // the zero Attr
	}
	for i, s := range awkwardStrings {
		as = append(as, slog.String(fmt.Sprintf("s%d", i), s), slog.String(s, "as key"))
	}
	as = append(as, floatAttrs(awkwardFloats...)...)
	for i, tm := range awkwardTimes() {
		as = append(as, slog.Time(fmt.Sprintf("t%d", i), tm))
	}
	return as
}

// groupAttrs returns groups of every shape: nested, empty, inline and of
// attributes that are all empty.
func groupAttrs() []slog.Attr {
	return []slog.Attr{
		group("g", "a", 1, group("h", "b", 2)),
		group("empty"),
		group("", "inline", 1),
		group("", group("", "deep", true)),
		group("of-empty", slog.Attr{}),
		group("nested-empty", group("e")),
		group("nested-of-empty", group("e", slog.Attr{})),
		group("", slog.Attr{}),
		slog.Any("valued-group", groupValuer{}),
		group("<g>\n", "\u2028", "x"),
	}
}

func TestJSONHandlerMatchesSlog(t *testing.T) {
	ctx := context.Background()
	chains := [][]step{
		nil,
		{withGroup("g")},
		{withAttrs(slog.String("svc", "orders"))},
		{withAttrs(slog.String("svc", "orders")), withGroup("g")},
		{withGroup("g"), withAttrs(slog.Int("a", 1))},
		{withGroup("g"), withAttrs(slog.Int("a", 1)), withGroup("h")},
		{withGroup("g"), withAttrs(slog.Int("a", 1)), withGroup("h"), withAttrs(slog.Int("b", 2))},
		{withAttrs()},
		{withAttrs(group("e"))},
		{withGroup("g"), withAttrs(group("e"))},
		{withGroup("g"), withAttrs(group("e"), slog.Attr{})},
		{withGroup("g"), withAttrs(group("e"), slog.Attr{}), withAttrs(slog.Int("a", 1))},
		{withGroup("g"), withAttrs(slog.Attr{})},
		{withAttrs(slog.Attr{}), withAttrs(slog.Int("a", 1))},
		{withGroup("")},
		{withGroup(""), withAttrs(slog.Int("a", 1))},
		{withGroup("g"), withAttrs(group("x", slog.Attr{})), withAttrs(slog.Int("a", 1))},
		{withAttrs(valueAttrs()...)},
		{withGroup("g"), withAttrs(groupAttrs()...), withGroup("h")},
		{withGroup("a\"b"), withGroup("\xff")},
	}
	records := []struct {
		name  string
		level slog.Level
		msg   string
		time  time.Time
		attrs []slog.Attr
	}{
		{"no attrs", slog.LevelInfo, "hello", testTime, nil},
		{"zero time", slog.LevelInfo, "hello", time.Time{}, []slog.Attr{slog.Int("a", 1)}},
		{"levels", slog.LevelDebug - 1, "m", testTime, nil},
		{"level +2", slog.LevelInfo + 2, "m", testTime, nil},
		{"level warn", slog.LevelWarn, "m", testTime, nil},
		{"level error+9", slog.LevelError + 9, "m", testTime, nil},
		{"level -100", -100, "m", testTime, nil},
		{"awkward message", slog.LevelError, awkwardStrings[3] + awkwardStrings[7] + awkwardStrings[6], testTime, nil},
		{"only empty attrs", slog.LevelInfo, "m", testTime, []slog.Attr{{}, group("g", slog.Attr{})}},
		{"values", slog.LevelInfo, "m", testTime, valueAttrs()},
		{"groups", slog.LevelWarn, "m", testTime, groupAttrs()},
		{"floats", slog.LevelInfo, "m", testTime, floatAttrs(awkwardFloats...)},
	}
	for _, tm := range awkwardTimes() {
		records = append(records, struct {
			name  string
			level slog.Level
			msg   string
			time  time.Time
			attrs []slog.Attr
		}{"time " + tm.String(), slog.LevelInfo, "m", tm, nil})
	}
	for _, opts := range []*slog.HandlerOptions{nil, {Level: slog.LevelDebug}, {AddSource: true}, {ReplaceAttr: withoutTime}} {
		for _, chain := range chains {
			tw := newTwin(opts)
			for _, s := range chain {
				tw = tw.then(s.apply)
			}
			for _, rc := range records {
				r := slog.NewRecord(rc.time, rc.level, rc.msg, 0)
				r.AddAttrs(rc.attrs...)
				tw.handle(ctx, r)
				tw.same(t, fmt.Sprintf("options %+v, %v, record %s", opts, chain, rc.name))
			}
		}
	}
}

// TestJSONHandlerMatchesSlogRandom logs random records, built of the
// values above, through random chains of WithAttrs and WithGroup.
func TestJSONHandlerMatchesSlogRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := append(valueAttrs(), groupAttrs()...)
	var randomAttr func(depth int) slog.Attr
	randomAttr = func(depth int) slog.Attr {
		switch n := rng.IntN(10); {
		case n == 0 && depth < 3:
			as := make([]any, rng.IntN(4))
			for i := range as {
				as[i] = randomAttr(depth + 1)
			}
			return slog.Group(awkwardStrings[rng.IntN(4)], as...)
		case n == 1:
			return slog.String(awkwardStrings[rng.IntN(len(awkwardStrings))], randomString(rng))
		case n == 2:
			return slog.Float64("f", math.Float64frombits(rng.Uint64()))
		case n == 3:
			return slog.Int64("i", int64(rng.Uint64()))
		default:
			return values[rng.IntN(len(values))]
		}
	}
	randomAttrs := func() []slog.Attr {
		as := make([]slog.Attr, rng.IntN(8))
		for i := range as {
			as[i] = randomAttr(0)
		}
		return as
	}
	for i := range 2000 {
		tw := newTwin(&slog.HandlerOptions{Level: slog.LevelDebug})
		var chain []step
		for range rng.IntN(4) {
			s := withAttrs(randomAttrs()...)
			if rng.IntN(2) == 0 {
				s = withGroup(awkwardStrings[rng.IntN(5)])
			}
			chain = append(chain, s)
			tw = tw.then(s.apply)
		}
		r := slog.NewRecord(testTime.Add(time.Duration(rng.Int64())), slog.Level(rng.IntN(20)-10), randomString(rng), 0)
		r.AddAttrs(randomAttrs()...)
		tw.handle(context.Background(), r)
		tw.same(t, fmt.Sprintf("round %d: %v, record %v", i, chain, r))
	}
}

// randomString returns a short string of bytes from every class escaping
// treats apart.
func randomString(rng *rand.Rand) string {
	const pieces = "a\"\\\n\x01\x7f<&\u2028\u00e9\xff\xe6\x97\U0001F600 "
	b := make([]byte, rng.IntN(12))
	for i := range b {
		b[i] = pieces[rng.IntN(len(pieces))]
	}
	return string(b)
}

// TestHandlerOverJSONHandlerMatchesSlog logs through a Handler over each
// JSON handler, which takes the Handler's direct path to ours.
func TestHandlerOverJSONHandlerMatchesSlog(t *testing.T) {
	ctx := fullContext(t)
	chains := [][]step{
		nil,
		{withAttrs(slog.String("svc", "orders"), slog.String("password", "x"))},
		{withGroup("order")},
		{withGroup("order"), withAttrs(slog.Int("id", 7), group("e"))},
		{withAttrs(slog.Int("id", 7)), withGroup("order"), withGroup("item"), withAttrs(slog.Attr{})},
	}
	for _, opts := range [][]logging.Option{nil, {logging.WithAttrs(slog.String("svc", "orders"), group("e"))}} {
		for _, chain := range chains {
			tw := newTwin(nil).then(func(h slog.Handler) slog.Handler { return logging.NewHandler(h, opts...) })
			for _, s := range chain {
				tw = tw.then(s.apply)
			}
			for _, attrs := range [][]slog.Attr{
				nil,
				{slog.Int("order", 42), slog.String("status", "created")},
				{slog.String("token", "hunter2"), slog.String("note", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")},
				valueAttrs(),
				groupAttrs(),
				{group("e"), slog.Attr{}},
			} {
				r := slog.NewRecord(testTime, slog.LevelInfo, "order created", 0)
				r.AddAttrs(attrs...)
				tw.handle(ctx, r)
				tw.same(t, fmt.Sprintf("options %v, %v, attrs %v", opts, chain, attrs))
			}
		}
	}
}

// TestAccessLogOverJSONHandlerMatchesSlog compares the access lines, which
// take the access log's direct path to ours.
func TestAccessLogOverJSONHandlerMatchesSlog(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, opts := range [][]logging.Option{nil, {logging.WithAttrs(slog.String("svc", "orders"))}} {
		tw := newTwin(nil)
		var handlers []http.Handler
		for _, h := range []slog.Handler{tw.slog, tw.ours} {
			handlers = append(handlers, logging.AccessLog(slog.New(logging.NewHandler(h, opts...)),
				logging.WithAuditor(nil), logging.WithoutTraceContext(),
				logging.WithAccessClock(stepClock(start, 1234567*time.Nanosecond)),
			)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/missing":
					http.NotFound(w, r)
				case "/broken":
					w.WriteHeader(http.StatusInternalServerError)
				default:
					io.WriteString(w, "ok")
				}
			})))
		}
		for _, path := range []string{"/orders", "/missing", "/broken"} {
			for _, method := range []string{"GET", "DELETE"} {
				for _, h := range handlers {
					req := httptest.NewRequest(method, path, nil)
					req.Header.Set("X-Request-ID", "req-1")
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
				tw.same(t, fmt.Sprintf("options %v, %s %s", opts, method, path))
			}
		}
	}
}

func TestJSONHandlerSlogtest(t *testing.T) {
	for _, opts := range []*slog.HandlerOptions{nil, {ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}} {
		bufs := map[*testing.T]*bytes.Buffer{}
		slogtest.Run(t,
			func(t *testing.T) slog.Handler {
				bufs[t] = new(bytes.Buffer)
				return logging.NewJSONHandler(bufs[t], opts)
			},
			func(t *testing.T) map[string]any {
				return decodeOne(t, bufs[t].String())
			})
	}
}

func TestJSONHandlerLevel(t *testing.T) {
	var level slog.LevelVar
	h := logging.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: &level})
	ctx := context.Background()
	if h.Enabled(ctx, slog.LevelDebug) || !h.Enabled(ctx, slog.LevelInfo) {
		t.Error("at level INFO, debug is enabled or info is not")
	}
	level.Set(slog.LevelError)
	if h.WithGroup("g").Enabled(ctx, slog.LevelWarn) || !h.WithAttrs([]slog.Attr{slog.Int("a", 1)}).Enabled(ctx, slog.LevelError) {
		t.Error("after LevelVar.Set(ERROR), a derived handler has the old level")
	}
	if logging.NewJSONHandler(io.Discard, nil).Enabled(ctx, slog.LevelDebug) {
		t.Error("without options, debug is enabled")
	}
}

func TestNewJSONHandlerNilWriterPanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.HasPrefix(fmt.Sprint(p), "logging: ") {
			t.Errorf("panic %v, want one starting with logging:", p)
		}
	}()
	logging.NewJSONHandler(nil, nil)
}

// lineChecker fails the test when a Write is not exactly one whole JSON
// line or overlaps another Write.
type lineChecker struct {
	t      testing.TB
	busy   atomic.Bool
	writes atomic.Int64
}

func (w *lineChecker) Write(p []byte) (int, error) {
	if !w.busy.CompareAndSwap(false, true) {
		w.t.Error("two Writes at once")
	}
	defer w.busy.Store(false)
	w.writes.Add(1)
	if bytes.IndexByte(p, '\n') != len(p)-1 || !json.Valid(p) {
		w.t.Errorf("a Write that is not one whole JSON line: %q", p)
	}
	return len(p), nil
}

// TestJSONHandlerConcurrentWrites logs from many goroutines through
// handlers derived from one JSONHandler, by every path: Handle, a Handler
// over it and an access log.
func TestJSONHandlerConcurrentWrites(t *testing.T) {
	w := &lineChecker{t: t}
	root := logging.NewJSONHandler(w, nil)
	ctx := fullContext(t)
	loggers := []*slog.Logger{
		slog.New(root),
		slog.New(root.WithAttrs([]slog.Attr{slog.String("svc", "orders")})),
		slog.New(root.WithGroup("g")),
		slog.New(logging.NewHandler(root)),
		slog.New(logging.NewHandler(root)).WithGroup("order"),
	}
	access := logging.AccessLog(slog.New(logging.NewHandler(root)), logging.WithAuditor(nil))(http.NotFoundHandler())
	const goroutines, lines = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range lines {
				if g == 0 {
					access.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/orders", nil))
					continue
				}
				loggers[(g+i)%len(loggers)].InfoContext(ctx, "line", "goroutine", g, "i", i, "text", strings.Repeat("x", i))
			}
		})
	}
	wg.Wait()
	if n := w.writes.Load(); n != goroutines*lines {
		t.Errorf("%d writes, want %d", n, goroutines*lines)
	}
}

// FuzzJSONHandler compares the lines of slog's JSON handler and ours for
// fuzzed keys, strings and numbers, in groups and attributes of WithAttrs.
func FuzzJSONHandler(f *testing.F) {
	f.Add("key", "value", 1.5, int64(-3), uint64(7))
	f.Add("", "\xff\u2028\"\\\n<&>", math.Copysign(0, -1), int64(math.MinInt64), uint64(math.MaxUint64))
	f.Add("k\x00", "\xe6\x97", 1e21, int64(0), uint64(0))
	f.Add("g", "", 1e-7, int64(1), uint64(1))
	f.Fuzz(func(t *testing.T, key, s string, x float64, i int64, u uint64) {
		tw := newTwin(nil).then(func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String(key, s)}).WithGroup(s)
		})
		r := slog.NewRecord(testTime, slog.Level(i%20), s, 0)
		r.AddAttrs(slog.String(key, s), slog.Float64("x", x), slog.Int64(s, i), slog.Uint64("u", u),
			slog.Group(key, slog.String(s, key)), slog.Any("f", x))
		tw.handle(context.Background(), r)
		tw.same(t, "fuzzed record")
	})
}

// TestJSONHandlerEscapesAtEveryOffset puts each character escaping treats
// apart at every offset of strings of every length up to 25, where ours
// looks at eight bytes at a time and at the last few as one more word.
func TestJSONHandlerEscapesAtEveryOffset(t *testing.T) {
	tw := newTwin(nil)
	for _, c := range []string{"\"", "\\", "\x00", "\x1f", "\n", " ", "~", "\x7f", "\x80", "\xff", "é", "\u2028", "\U0001F600", "\xe2\x80"} {
		for n := range 25 {
			for i := range n + 1 {
				s := strings.Repeat("a", i) + c + strings.Repeat("b", n-i)
				r := slog.NewRecord(testTime, slog.LevelInfo, s, 0)
				r.AddAttrs(slog.String(s, s))
				tw.handle(context.Background(), r)
				tw.same(t, fmt.Sprintf("%q", s))
			}
		}
	}
}
