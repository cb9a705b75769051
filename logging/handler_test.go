package logging_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestSlogtest runs the standard library's handler conformance tests over
// a Handler in front of the JSON and the text handler.
func TestSlogtest(t *testing.T) {
	tests := []struct {
		name  string
		next  func(io.Writer) slog.Handler
		opts  []logging.Option
		parse func(testing.TB, string) map[string]any
	}{
		{
			name:  "json",
			next:  func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
			parse: decodeOne,
		},
		{
			name:  "our json",
			next:  func(w io.Writer) slog.Handler { return logging.NewJSONHandler(w, nil) },
			parse: decodeOne,
		},
		{
			name: "text",
			next: func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
			parse: func(t testing.TB, out string) map[string]any {
				if n := strings.Count(out, "\n"); n != 1 {
					t.Fatalf("got %d lines, want 1:\n%s", n, out)
				}
				return parseText(t, out)
			},
		},
		{
			name:  "json with static attrs and extra redacted keys",
			next:  func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
			opts:  []logging.Option{logging.WithAttrs(slog.String("service", "orders")), logging.WithRedactedKeys("ssn")},
			parse: decodeOne,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bufs := map[*testing.T]*bytes.Buffer{}
			slogtest.Run(t,
				func(t *testing.T) slog.Handler {
					bufs[t] = new(bytes.Buffer)
					return logging.NewHandler(tc.next(bufs[t]), tc.opts...)
				},
				func(t *testing.T) map[string]any {
					return tc.parse(t, bufs[t].String())
				})
		})
	}
}

func TestNewHandlerNilPanics(t *testing.T) {
	defer func() {
		p := recover()
		if s, _ := p.(string); !strings.HasPrefix(s, "logging: ") {
			t.Errorf("panic = %v, want a message with the logging: prefix", p)
		}
	}()
	logging.NewHandler(nil)
}

func TestHandlerContextFields(t *testing.T) {
	bg := context.Background()
	bare, err := tenant.New("bare", tenant.Tier{})
	if err != nil {
		t.Fatal(err)
	}
	sc := spanContext(t)
	tests := []struct {
		name string
		ctx  context.Context
		want map[string]any
	}{
		{"nothing known", bg, map[string]any{}},
		{
			"tenant", tenant.NewContext(bg, mustTenant(t, "acme", "premium", "user-7")),
			map[string]any{"tenant_id": "acme", "tenant_tier": "premium", "user_id": "user-7"},
		},
		{"tenant without tier or user", tenant.NewContext(bg, bare), map[string]any{"tenant_id": "bare"}},
		{"request id", logging.NewRequestIDContext(bg, "req-9"), map[string]any{"request_id": "req-9"}},
		{"span", trace.ContextWithSpanContext(bg, sc), map[string]any{"trace_id": testTraceID, "span_id": testSpanID}},
		{"remote span", trace.ContextWithRemoteSpanContext(bg, sc), map[string]any{"trace_id": testTraceID, "span_id": testSpanID}},
		{"invalid span", trace.ContextWithSpanContext(bg, trace.SpanContext{}), map[string]any{}},
		{"everything", fullContext(t), fullFields},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, buf := newLogger()
			logger.InfoContext(tc.ctx, "hello", "k", "v")
			want := with(tc.want, "level", "INFO", "msg", "hello", "k", "v")
			if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("no context", func(t *testing.T) {
		logger, buf := newLogger()
		logger.Info("hello")
		if diff := cmp.Diff(map[string]any{"level": "INFO", "msg": "hello"}, decodeOne(t, buf.String())); diff != "" {
			t.Errorf("line (-want +got):\n%s", diff)
		}
	})
}

// TestHandlerSDKSpan takes the trace and span IDs from a span started by
// the OpenTelemetry SDK.
func TestHandlerSDKSpan(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()

	logger, buf := newLogger()
	logger.InfoContext(ctx, "in span")
	sc := span.SpanContext()
	want := map[string]any{"level": "INFO", "msg": "in span", "trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()}
	if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
}

// TestHandlerSpanChanges logs alternately from two spans of one request,
// and from goroutines with spans of their own: each line names its span.
func TestHandlerSpanChanges(t *testing.T) {
	logger, buf := newLogger()
	req := logging.NewRequestIDContext(context.Background(), "req-1")
	span := func(i int) (context.Context, string) {
		sc := spanContext(t)
		sid := trace.SpanID{0, 0, 0, 0, 0, 0, 1, byte(i)}
		return trace.ContextWithSpanContext(req, sc.WithSpanID(sid)), sid.String()
	}
	a, aID := span(1)
	b, bID := span(2)
	var want []string
	for _, step := range []struct {
		ctx context.Context
		id  string
	}{{a, aID}, {a, aID}, {b, bID}, {a, aID}, {b, bID}, {req, ""}} {
		logger.InfoContext(step.ctx, "m")
		want = append(want, step.id)
	}
	var got []string
	for _, rec := range decodeLines(t, buf.String()) {
		id, _ := rec["span_id"].(string)
		got = append(got, id)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("span_id per line (-want +got):\n%s", diff)
	}

	buf2 := new(syncBuffer)
	logger = slog.New(logging.NewHandler(jsonHandler(buf2)))
	var wg sync.WaitGroup
	for i := range 8 {
		ctx, id := span(i)
		wg.Go(func() {
			for range 50 {
				logger.InfoContext(ctx, "m", "want", id)
			}
		})
	}
	wg.Wait()
	for _, rec := range decodeLines(t, buf2.String()) {
		if rec["span_id"] != rec["want"] || rec["trace_id"] != testTraceID {
			t.Fatalf("line names trace %v span %v, want span %v", rec["trace_id"], rec["span_id"], rec["want"])
		}
	}
}

func TestHandlerGroups(t *testing.T) {
	tests := []struct {
		name  string
		build func(*slog.Logger) *slog.Logger
		args  []any
		want  map[string]any // besides level, msg and the context fields
	}{
		{
			name:  "one group",
			build: func(l *slog.Logger) *slog.Logger { return l.WithGroup("g") },
			args:  []any{"k", "v"},
			want:  map[string]any{"g": map[string]any{"k": "v"}},
		},
		{
			name:  "group, attrs, group",
			build: func(l *slog.Logger) *slog.Logger { return l.WithGroup("a").With("x", 1).WithGroup("b") },
			args:  []any{"y", 2},
			want:  map[string]any{"a": map[string]any{"x": 1.0, "b": map[string]any{"y": 2.0}}},
		},
		{
			name:  "empty inner group is not written",
			build: func(l *slog.Logger) *slog.Logger { return l.WithGroup("a").With("x", 1).WithGroup("b") },
			want:  map[string]any{"a": map[string]any{"x": 1.0}},
		},
		{
			name:  "empty group is not written",
			build: func(l *slog.Logger) *slog.Logger { return l.WithGroup("g") },
			want:  map[string]any{},
		},
		{
			name:  "empty nested groups are not written",
			build: func(l *slog.Logger) *slog.Logger { return l.WithGroup("a").WithGroup("b") },
			args:  []any{slog.Attr{}},
			want:  map[string]any{},
		},
		{
			name:  "empty group name is no group",
			build: func(l *slog.Logger) *slog.Logger { return l.WithGroup("") },
			args:  []any{"k", "v"},
			want:  map[string]any{"k": "v"},
		},
		{
			name:  "attrs at the top level",
			build: func(l *slog.Logger) *slog.Logger { return l.With("svc", "orders") },
			args:  []any{"k", "v"},
			want:  map[string]any{"svc": "orders", "k": "v"},
		},
		{
			name:  "top-level attrs before a group",
			build: func(l *slog.Logger) *slog.Logger { return l.With("svc", "orders").WithGroup("g").With("in", true) },
			args:  []any{"k", "v"},
			want:  map[string]any{"svc": "orders", "g": map[string]any{"in": true, "k": "v"}},
		},
		{
			name:  "group in the record",
			build: func(l *slog.Logger) *slog.Logger { return l },
			args:  []any{slog.Group("req", "id", 3)},
			want:  map[string]any{"req": map[string]any{"id": 3.0}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, buf := newLogger()
			tc.build(logger).InfoContext(fullContext(t), "m", tc.args...)
			want := with(fullFields, "level", "INFO", "msg", "m")
			for k, v := range tc.want {
				want[k] = v
			}
			if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHandlerGroupsExactLine checks the bytes, not only the decoded object:
// the context fields come first, at the top level, then the groups.
func TestHandlerGroupsExactLine(t *testing.T) {
	logger, buf := newLogger()
	logger.WithGroup("a").With("x", 1).WithGroup("b").InfoContext(fullContext(t), "m", "y", 2)
	want := `{"level":"INFO","msg":"m","tenant_id":"acme","tenant_tier":"premium","user_id":"user-7",` +
		`"request_id":"req-1","trace_id":"` + testTraceID + `","span_id":"` + testSpanID + `","a":{"x":1,"b":{"y":2}}}` + "\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestHandlerStaticAttrs(t *testing.T) {
	logger, buf := newLogger(logging.WithAttrs(slog.String("service", "orders"), slog.String("password", "static-secret")))
	logger.Info("no context")
	logger.WithGroup("g").InfoContext(fullContext(t), "grouped", "k", "v")
	got := decodeLines(t, buf.String())
	want := []map[string]any{
		{"level": "INFO", "msg": "no context", "service": "orders", "password": logging.Redacted},
		with(fullFields, "level", "INFO", "msg", "grouped", "service", "orders", "password", logging.Redacted, "g", map[string]any{"k": "v"}),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// TestHandlerLeavesRecordAlone handles the same record twice: the fields
// added the first time must not show up in the caller's record.
func TestHandlerLeavesRecordAlone(t *testing.T) {
	for _, n := range []int{1, 5, 8} { // inline attrs only, full inline array, and spill-over
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			buf := new(syncBuffer)
			h := logging.NewHandler(jsonHandler(buf))
			r := slog.NewRecord(testTime, slog.LevelInfo, "m", 0)
			for i := range n {
				r.AddAttrs(slog.Int(fmt.Sprint("a", i), i))
			}
			ctx := fullContext(t)
			for range 2 {
				if err := h.Handle(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if r.NumAttrs() != n {
				t.Errorf("record has %d attrs after Handle, want %d", r.NumAttrs(), n)
			}
			lines := strings.SplitAfter(buf.String(), "\n")
			if lines[0] != lines[1] {
				t.Errorf("second line differs:\n%s%s", lines[0], lines[1])
			}
			if got := len(topLevelKeys(t, lines[0])); got != 2+n+len(fullFields) {
				t.Errorf("line has %d keys, want %d: %s", got, 2+n+len(fullFields), lines[0])
			}
		})
	}
}

func TestHandlerRedactsKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		next func(io.Writer) slog.Handler
	}{
		{"json", jsonHandler},
		{"text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := new(syncBuffer)
			logger := slog.New(logging.NewHandler(tc.next(buf), logging.WithRedactedKeys("ssn")))
			ctx := fullContext(t)
			logger.InfoContext(ctx, "top",
				slog.String("Authorization", "Basic dXNlcjpwYXNz"),
				slog.String("PASSWORD", "hunter2"),
				slog.String("SSN", "123-45-6789"),
				slog.Group("req", slog.Group("headers", slog.String("Cookie", "session=s3cr3t-cookie"))),
				slog.Any("creds", secretValuer{}),
				slog.String("user", "bob"))
			logger.With("client_secret", "cs-with").WithGroup("http").With("Refresh_Token", "rt-with").
				InfoContext(ctx, "grouped", slog.String("X-Api-Key", "k-123"), slog.Int("port", 80))
			logger.InfoContext(ctx, "header map", slog.Any("headers", http.Header{
				"Authorization": {"Basic dXNlcjpwYXNz"},
				"Accept":        {"application/json"},
			}))

			out := buf.String()
			if leaked := containsAny(out, "dXNlcjpwYXNz", "hunter2", "123-45-6789", "s3cr3t-cookie", "lv-token", "cs-with", "rt-with", "k-123"); leaked != nil {
				t.Errorf("output contains %q:\n%s", leaked, out)
			}
			for _, kept := range []string{"bob", "80", "application/json"} {
				if !strings.Contains(out, kept) {
					t.Errorf("output lacks the ordinary value %q:\n%s", kept, out)
				}
			}
		})
	}

	t.Run("shape", func(t *testing.T) {
		logger, buf := newLogger()
		logger.Info("m",
			slog.Group("req", slog.Group("headers", slog.String("Cookie", "c"), slog.String("Accept", "a"))),
			slog.Any("creds", secretValuer{}))
		want := map[string]any{
			"level": "INFO", "msg": "m",
			"req":   map[string]any{"headers": map[string]any{"Cookie": logging.Redacted, "Accept": "a"}},
			"creds": map[string]any{"user": "bob", "token": logging.Redacted},
		}
		if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
			t.Errorf("line (-want +got):\n%s", diff)
		}
	})
}

// secretValuer resolves to a group holding a token.
type secretValuer struct{}

func (secretValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", "bob"), slog.String("token", "lv-token"))
}

// tokenValuer resolves to a token under an innocent key.
type tokenValuer string

func (v tokenValuer) LogValue() slog.Value { return slog.StringValue(string(v)) }

// TestHandlerRedactsJWT mints a real token and logs it every way a
// service might, then searches the whole output for it.
func TestHandlerRedactsJWT(t *testing.T) {
	iss := authztest.Start(t)
	tok := iss.MustMint("acme", "premium")
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	if len(sig) < 20 {
		t.Fatalf("signature %q is too short to search for", sig)
	}
	for _, tc := range []struct {
		name string
		next func(io.Writer) slog.Handler
	}{
		{"json", jsonHandler},
		{"text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := new(syncBuffer)
			logger := slog.New(logging.NewHandler(tc.next(buf)))
			ctx := fullContext(t)
			verifyErr := fmt.Errorf("authz: verify %s: %w", tok, errors.New("expired"))
			logger.InfoContext(ctx, "bearer", slog.String("note", "Bearer "+tok))
			logger.InfoContext(ctx, "bare", slog.String("value", tok))
			logger.ErrorContext(ctx, "error", slog.Any("err", verifyErr))
			logger.ErrorContext(ctx, "error in group", slog.Group("g", slog.Any("err", verifyErr)))
			logger.InfoContext(ctx, "valuer", slog.Any("v", tokenValuer(tok)))
			logger.With("hdr", "Bearer "+tok).InfoContext(ctx, "with")
			logger.WithGroup("g").With("hdr", "Bearer "+tok).InfoContext(ctx, "with in group", "raw", tok)
			logger.InfoContext(ctx, "headers", slog.Any("headers", http.Header{"X-Forwarded-Authorization": {"Bearer " + tok}}))
			logger.InfoContext(ctx, "received Bearer "+tok)

			out := buf.String()
			if n := strings.Count(out, "\n"); n != 9 {
				t.Errorf("got %d lines, want 9", n)
			}
			if leaked := containsAny(out, tok, sig, "Bearer eyJ"); leaked != nil {
				t.Errorf("output contains %d of the token, its signature and its prefix:\n%s", len(leaked), out)
			}
			if n := strings.Count(out, logging.Redacted); n < 10 {
				t.Errorf("output has %d redactions, want at least 10:\n%s", n, out)
			}
		})
	}
}

// TestHandlerJWTLookalikes are values that resemble a token and must be
// kept.
func TestHandlerJWTLookalikes(t *testing.T) {
	logger, buf := newLogger()
	values := []string{"eyJ", "eyJhbGciOi", "eyJa.b.c", "version 1.2.3", "see https://eyJ.example.com/x"}
	for _, v := range values {
		logger.Info("m", "v", v)
	}
	var got []string
	for _, rec := range decodeLines(t, buf.String()) {
		got = append(got, rec["v"].(string))
	}
	if diff := cmp.Diff(values, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

// TestHandlerLogInjection logs user input made to look like a second
// record. Each record must stay one line and no forged record may parse
// out of the output.
func TestHandlerLogInjection(t *testing.T) {
	const (
		forgedJSON = "x\n{\"level\":\"ERROR\",\"msg\":\"forged\"}"
		forgedText = "x\ntime=2026-01-01T00:00:00Z level=ERROR msg=forged"
		quotes     = `he said "hi" and \"bye\" '` + "\r"
	)
	for _, id := range []string{"acme\nlevel=ERROR", "acme\r", "acme\u2028x", "acme\u0085x"} {
		if err := tenant.ValidateID(id); !errors.Is(err, tenant.ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
	// A Tenant built by hand skips ValidateID; the handler must still be
	// safe.
	forgedTenant := tenant.NewContext(context.Background(), tenant.Tenant{ID: "evil\n" + forgedJSON, Subject: forgedText})

	for _, tc := range []struct {
		name  string
		next  func(io.Writer) slog.Handler
		parse func(testing.TB, string) map[string]any
	}{
		{"json", jsonHandler, func(t testing.TB, line string) map[string]any { return decodeOne(t, line) }},
		{"text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }, parseText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := new(syncBuffer)
			logger := slog.New(logging.NewHandler(tc.next(buf)))
			ctx := fullContext(t)
			logger.InfoContext(ctx, forgedJSON, "q", forgedJSON, forgedText, "key from input", "quotes", quotes)
			logger.With("w", forgedText).WithGroup(forgedJSON).InfoContext(ctx, forgedText, "k", quotes)
			logger.InfoContext(forgedTenant, quotes)

			lines := strings.SplitAfter(buf.String(), "\n")
			lines = lines[:len(lines)-1] // after the last newline
			if len(lines) != 3 {
				t.Fatalf("got %d lines for 3 records:\n%s", len(lines), buf.String())
			}
			wantMsgs := []string{forgedJSON, forgedText, quotes}
			for i, line := range lines {
				rec := tc.parse(t, line)
				if rec["msg"] != wantMsgs[i] {
					t.Errorf("line %d: msg = %q, want %q", i, rec["msg"], wantMsgs[i])
				}
				if rec["level"] != "INFO" {
					t.Errorf("line %d: level = %q, want INFO", i, rec["level"])
				}
			}
			first := tc.parse(t, lines[0])
			if first["q"] != forgedJSON || first[forgedText] != "key from input" || first["quotes"] != quotes {
				t.Errorf("values did not survive the round trip: %q", first)
			}
			if got := tc.parse(t, lines[2])["tenant_id"]; got != "evil\n"+forgedJSON {
				t.Errorf("tenant_id = %q, want the hand-built ID back", got)
			}
		})
	}
}

func TestLevelsPerTenant(t *testing.T) {
	levels := logging.NewLevels(slog.LevelInfo)
	logger, buf := newLogger(logging.WithLevels(levels))
	acme := tenant.NewContext(context.Background(), mustTenant(t, "acme", "basic", ""))
	globex := tenant.NewContext(context.Background(), mustTenant(t, "globex", "basic", ""))

	logAll := func(step string) {
		logger.DebugContext(acme, step)
		logger.DebugContext(globex, step)
		logger.InfoContext(acme, step)
		logger.InfoContext(globex, step)
		logger.Debug(step) // no tenant
	}
	logAll("before")
	levels.Set("acme", slog.LevelDebug)
	logAll("acme debug")
	levels.Set("globex", slog.LevelError)
	logAll("globex error")
	levels.Delete("acme")
	levels.Delete("globex")
	logAll("deleted")
	levels.Delete("never-set")
	logAll("deleted again")

	type line struct{ Step, Level, Tenant string }
	var got []line
	for _, rec := range decodeLines(t, buf.String()) {
		id, _ := rec["tenant_id"].(string)
		got = append(got, line{rec["msg"].(string), rec["level"].(string), id})
	}
	want := []line{
		{"before", "INFO", "acme"}, {"before", "INFO", "globex"},
		{"acme debug", "DEBUG", "acme"}, {"acme debug", "INFO", "acme"}, {"acme debug", "INFO", "globex"},
		{"globex error", "DEBUG", "acme"}, {"globex error", "INFO", "acme"},
		{"deleted", "INFO", "acme"}, {"deleted", "INFO", "globex"},
		{"deleted again", "INFO", "acme"}, {"deleted again", "INFO", "globex"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestLevelsBase(t *testing.T) {
	var base slog.LevelVar // info
	levels := logging.NewLevels(&base)
	h := logging.NewHandler(slog.NewJSONHandler(io.Discard, nil), logging.WithLevels(levels))
	acme := tenant.NewContext(context.Background(), mustTenant(t, "acme", "basic", ""))
	bg := context.Background()

	check := func(step string, ctx context.Context, level slog.Level, want bool) {
		t.Helper()
		if got := h.Enabled(ctx, level); got != want {
			t.Errorf("%s: Enabled(%v) = %v, want %v", step, level, got, want)
		}
	}
	check("info base", bg, slog.LevelDebug, false)
	check("info base", bg, slog.LevelInfo, true)
	base.Set(slog.LevelDebug)
	check("debug base", bg, slog.LevelDebug, true)
	check("debug base", acme, slog.LevelDebug, true)
	base.Set(slog.LevelWarn)
	check("warn base", bg, slog.LevelInfo, false)
	levels.Set("acme", slog.LevelInfo)
	check("warn base, acme info", acme, slog.LevelInfo, true)
	check("warn base, acme info", bg, slog.LevelInfo, false)
	if got := levels.For(acme); got != slog.LevelInfo {
		t.Errorf("For(acme) = %v, want INFO", got)
	}
	if got := levels.For(bg); got != slog.LevelWarn {
		t.Errorf("For(no tenant) = %v, want WARN", got)
	}

	if got := logging.NewLevels(nil).For(bg); got != slog.LevelInfo {
		t.Errorf("NewLevels(nil).For = %v, want INFO", got)
	}
	warn := logging.NewHandler(slog.NewJSONHandler(io.Discard, nil), logging.WithLevels(logging.NewLevels(slog.LevelWarn)))
	if warn.Enabled(bg, slog.LevelInfo) || !warn.Enabled(bg, slog.LevelWarn) {
		t.Error("WithLevels(NewLevels(WARN)): info enabled or warn disabled")
	}
	def := logging.NewHandler(slog.NewJSONHandler(io.Discard, nil))
	if def.Enabled(bg, slog.LevelDebug) || !def.Enabled(bg, slog.LevelInfo) {
		t.Error("default level is not INFO")
	}
}

// TestLevelsConcurrent changes overrides while 16 goroutines log; run
// with -race.
func TestLevelsConcurrent(t *testing.T) {
	const (
		workers = 16
		rounds  = 200
	)
	levels := logging.NewLevels(slog.LevelInfo)
	logger, buf := newLogger(logging.WithLevels(levels))
	var wg sync.WaitGroup
	for i := range workers {
		id := fmt.Sprint("tenant-", i%4)
		ctx := tenant.NewContext(context.Background(), mustTenant(t, id, "basic", ""))
		wg.Go(func() {
			for range rounds {
				if i%2 == 0 {
					levels.Set(id, slog.LevelDebug)
				} else {
					levels.Delete(id)
				}
				logger.DebugContext(ctx, "debug")
				logger.InfoContext(ctx, "info")
				levels.For(ctx)
			}
		})
	}
	wg.Wait()

	infos := 0
	for _, rec := range decodeLines(t, buf.String()) {
		if rec["level"] == "INFO" {
			infos++
		}
	}
	if infos != workers*rounds {
		t.Errorf("%d info lines, want %d", infos, workers*rounds)
	}
	for i := range 4 {
		levels.Delete(fmt.Sprint("tenant-", i))
	}
	ctx := tenant.NewContext(context.Background(), mustTenant(t, "tenant-0", "basic", ""))
	if got := levels.For(ctx); got != slog.LevelInfo {
		t.Errorf("after deleting every override, For = %v, want INFO", got)
	}
}
