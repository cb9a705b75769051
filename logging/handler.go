package logging

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/trace"
)

// The keys this package writes, a stable schema: dashboards and saved
// queries may rely on them. See docs/logging.md.
const (
	KeyTenantID   = "tenant_id"
	KeyTenantTier = "tenant_tier"
	KeyUserID     = "user_id"
	KeyRequestID  = "request_id"
	KeyTraceID    = "trace_id"
	KeySpanID     = "span_id"
)

// Handler is a [slog.Handler] that adds to every record logged with a
// context what that context knows: the tenant (tenant_id, tenant_tier,
// user_id), the request ID and the OpenTelemetry trace and span IDs. It also
// redacts secrets and applies per-tenant levels; see [Option].
//
// The fields are added at the top level even inside a logger's groups, so
// that every line of a tenant can be found by one key. A Handler is safe for
// concurrent use.
type Handler struct {
	next   slog.Handler // with the top-level attributes of WithAttrs applied
	opts   *options
	groups []groupOrAttrs // WithGroup and later WithAttrs, applied per record
}

// groupOrAttrs is one deferred WithGroup (group != "") or WithAttrs call.
type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler returns a Handler that adds context fields to the records it
// passes to next. next decides the format and destination; its own level
// is not consulted (the Handler's level decides, see [WithLevels]), so build
// it with the lowest level you want any tenant to reach.
func NewHandler(next slog.Handler, opts ...Option) *Handler {
	if next == nil {
		panic("logging: NewHandler needs a next handler")
	}
	return &Handler{next: next, opts: newOptions(opts)}
}

// Enabled reports whether a record at level should be logged: the level of
// the context's tenant when one was set with [Levels.Set], else the
// handler's level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.opts.levels.For(ctx)
}

// Handle adds the context's fields to r, redacts it and passes it on. A
// message holding something shaped like a token is replaced as a whole.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if looksLikeJWT(r.Message) {
		r.Message = Redacted // r is a copy; the caller's message is unchanged
	}
	var buf [8]slog.Attr
	fields := appendContext(buf[:0], ctx, h.opts.names)
	schema := len(fields) // the keys so far are the schema's
	fields = append(fields, h.opts.static...)
	red := h.opts.redactor
	// A JSONHandler takes the attributes straight from here: no record
	// to copy and add to.
	json, _ := h.next.(*JSONHandler)
	if json != nil && json.slog != nil {
		json = nil
	}

	if len(h.groups) == 0 {
		if json != nil {
			l := json.begin(r.Time, r.Level, r.Message)
			r.Attrs(func(a slog.Attr) bool {
				l.add(red.attr(a))
				return true
			})
			for _, a := range fields[:schema] {
				l.field(a)
			}
			for _, a := range fields[schema:] {
				l.add(a)
			}
			return json.end(&l)
		}
		if red.needed(&r) {
			out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
			r.Attrs(func(a slog.Attr) bool {
				out.AddAttrs(red.attr(a))
				return true
			})
			r = out
		} else if len(fields) > 0 {
			// Clone so that adding cannot write into an array another
			// copy of r shares.
			r = r.Clone()
		}
		r.AddAttrs(fields...)
		return h.next.Handle(ctx, r)
	}

	// Inside groups: the context fields stay at the top level and the
	// record's attributes go in the groups, innermost last.
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, red.attr(a))
		return true
	})
	for i := len(h.groups) - 1; i >= 0; i-- {
		g := h.groups[i]
		if g.group == "" {
			attrs = append(slices.Clone(g.attrs), attrs...)
			continue
		}
		if len(attrs) == 0 {
			continue // an empty group is not written
		}
		attrs = []slog.Attr{{Key: g.group, Value: slog.GroupValue(attrs...)}}
	}
	if json != nil {
		l := json.begin(r.Time, r.Level, r.Message)
		for _, a := range fields {
			l.add(a)
		}
		for _, a := range attrs {
			l.add(a)
		}
		return json.end(&l)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(fields...)
	out.AddAttrs(attrs...)
	return h.next.Handle(ctx, out)
}

// fieldNames are the keys of the context's fields.
type fieldNames struct {
	tenantID, tenantTier, userID string
	// spanInContext leaves trace_id and span_id out when the context
	// holds a span: the OpenTelemetry log bridge takes them from it.
	spanInContext bool
}

var (
	snakeNames = &fieldNames{tenantID: KeyTenantID, tenantTier: KeyTenantTier, userID: KeyUserID}
	otelNames  = &fieldNames{tenantID: string(tenant.IDKey), tenantTier: string(tenant.TierKey), userID: "user.id", spanInContext: true}
)

// handlePlain writes a line of attrs as Handle would write a record of
// them with nothing to redact: the context's fields, then the static
// attributes, straight into a JSONHandler when h wraps one. The access
// log and the message log call it for lines whose values they have
// checked need no redaction.
func (h *Handler) handlePlain(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr) {
	attrs = appendContext(attrs, ctx, h.opts.names)
	schema := len(attrs) // the keys so far are the schema's
	attrs = append(attrs, h.opts.static...)
	if json, ok := h.next.(*JSONHandler); ok {
		json.handleAttrs(ctx, t, level, msg, attrs, schema)
		return
	}
	rec := slog.NewRecord(t, level, msg, 0)
	rec.AddAttrs(attrs...)
	h.next.Handle(ctx, rec)
}

// appendContext appends the fields ctx knows, under the keys of names
// (snakeNames for nil).
func appendContext(dst []slog.Attr, ctx context.Context, names *fieldNames) []slog.Attr {
	if ctx == nil {
		return dst
	}
	if names == nil {
		names = snakeNames
	}
	// Outer middleware that log after the inner chain found the tenant
	// see it too: the request's state is their context.
	if t, ok := tenant.FromContext(ctx); ok {
		dst = append(dst, slog.String(names.tenantID, t.ID))
		if !t.Tier.IsZero() {
			dst = append(dst, slog.String(names.tenantTier, t.Tier.String()))
		}
		if t.Subject != "" {
			dst = append(dst, slog.String(names.userID, t.Subject))
		}
	}
	info := infoFrom(ctx)
	if info != nil {
		dst = append(dst, slog.String(KeyRequestID, info.ID))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		if names.spanInContext {
			return dst
		}
		tid, sid := spanIDs(info, sc.TraceID(), sc.SpanID())
		dst = append(dst, slog.String(KeyTraceID, tid), slog.String(KeySpanID, sid))
	} else if info != nil && info.HasTrace() {
		tid, sid := spanIDs(info, info.TraceID, info.SpanID)
		dst = append(dst, slog.String(KeyTraceID, tid), slog.String(KeySpanID, sid))
	}
	return dst
}

// WithAttrs returns a Handler whose records also carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	attrs = h.opts.redactor.attrs(attrs)
	h2 := *h
	if len(h.groups) == 0 {
		// Top level: let next pre-format them.
		h2.next = h.next.WithAttrs(attrs)
		return &h2
	}
	h2.groups = append(slices.Clip(h.groups), groupOrAttrs{attrs: attrs})
	return &h2
}

// WithGroup returns a Handler that puts the attributes that follow in the
// group name. The context fields stay at the top level.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = append(slices.Clip(h.groups), groupOrAttrs{group: name})
	return &h2
}
