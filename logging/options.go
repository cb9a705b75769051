package logging

import (
	"log/slog"
)

// Option configures a [Handler].
type Option func(*options)

type options struct {
	levels     *Levels
	redactKeys []string
	redactor   *redactor
	static     []slog.Attr
	names      *fieldNames
}

func newOptions(opts []Option) *options {
	o := &options{}
	for _, f := range opts {
		if f != nil {
			f(o)
		}
	}
	if o.levels == nil {
		o.levels = NewLevels(slog.LevelInfo)
	}
	o.redactor = newRedactor(o.redactKeys)
	o.static = o.redactor.attrs(o.static)
	return o
}

// WithOTelNames names the context's fields as OpenTelemetry does, for a
// Handler in front of the OpenTelemetry log bridge (otelslog): tenant.id
// and tenant.tier (the attributes of spans, metrics and baggage too) and
// user.id, instead of tenant_id, tenant_tier and user_id. trace_id and
// span_id are left out when the context holds a span, whose IDs the
// bridge puts on the record itself; a request the access log gave trace
// IDs without a span still carries them as attributes. Default: the
// snake_case keys of JSON lines (see docs/logging.md).
func WithOTelNames() Option { return func(o *options) { o.names = otelNames } }

// WithLevels sets the levels, with their per-tenant overrides, that the
// handler consults: WithLevels(NewLevels(slog.LevelWarn)) for a fixed
// level, a *slog.LevelVar base or [Levels.Set] to change them at run time.
// Default (also for nil) NewLevels(slog.LevelInfo).
func WithLevels(l *Levels) Option { return func(o *options) { o.levels = l } }

// WithRedactedKeys adds keys whose values are never written to the
// defaults [DefaultRedactedKeys]: attribute keys at any depth, map keys and
// struct field names. Keys are compared lower case and without '-' and
// '_', so WithRedactedKeys("session_id") also hides SessionID and
// session-id. Values that look like a JSON Web Token are redacted under
// any key.
func WithRedactedKeys(keys ...string) Option {
	return func(o *options) { o.redactKeys = append(o.redactKeys, keys...) }
}

// WithAttrs adds fixed attributes to every record, at the top level, such
// as the service name or the runtime metadata of [ECSMetadata].
func WithAttrs(attrs ...slog.Attr) Option {
	return func(o *options) { o.static = append(o.static, attrs...) }
}
