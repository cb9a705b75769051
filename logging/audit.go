package logging

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Outcome is the result an audit event records.
type Outcome string

// The outcomes of an audited action.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeDenied  Outcome = "denied"
	OutcomeFailure Outcome = "failure"
)

// Keys of an audit record.
const (
	KeyLogType  = "log_type"
	KeyAction   = "action"
	KeyResource = "resource"
	KeyOutcome  = "outcome"
)

// Auditor writes audit events: who (user and tenant) did what (action on
// resource) with which result, tied to the request and trace. Keep its
// handler apart from the application log (another stream, another log
// group) so that audit records are retained and access-controlled on their
// own. An Auditor is safe for concurrent use.
type Auditor struct {
	h    slog.Handler
	ours bool // h adds the context fields itself
	now  func() time.Time
}

// NewAuditor returns an Auditor writing to h. Every record is at level
// INFO with message "audit" and log_type "audit".
func NewAuditor(h slog.Handler) *Auditor {
	if h == nil {
		panic("logging: NewAuditor needs a handler")
	}
	_, ours := h.(*Handler)
	return &Auditor{h: h, ours: ours, now: time.Now}
}

// Audit writes one audit event. attrs add detail; secrets among them are
// redacted as by [Handler].
func (a *Auditor) Audit(ctx context.Context, action, resource string, outcome Outcome, attrs ...slog.Attr) {
	if ctx == nil {
		ctx = context.Background()
	}
	r := slog.NewRecord(a.now(), slog.LevelInfo, "audit", 0)
	r.AddAttrs(
		slog.String(KeyLogType, "audit"),
		slog.String(KeyAction, action),
		slog.String(KeyResource, resource),
		slog.String(KeyOutcome, string(outcome)),
	)
	if !a.ours {
		var buf [8]slog.Attr
		r.AddAttrs(appendContext(buf[:0], ctx, nil)...)
	}
	r.AddAttrs(auditRedactor.attrs(attrs)...)
	_ = a.h.Handle(ctx, r) // an audit handler that fails has nowhere better to report
}

var auditRedactor = newRedactor(nil)

var defaultAuditor atomic.Pointer[Auditor]

// SetDefaultAuditor makes a the auditor of [Audit] and of access logs that
// name none; nil turns them off.
func SetDefaultAuditor(a *Auditor) {
	if a == nil {
		defaultAuditor.Store(&Auditor{}) // a marker for "off"
		return
	}
	defaultAuditor.Store(a)
}

// DefaultAuditor returns the auditor of [Audit]: the one set with
// [SetDefaultAuditor], else one writing through slog.Default()'s handler;
// nil when turned off.
func DefaultAuditor() *Auditor {
	a := defaultAuditor.Load()
	switch {
	case a == nil:
		return NewAuditor(slog.Default().Handler())
	case a.h == nil:
		return nil
	}
	return a
}

// Audit writes an audit event with the default auditor.
func Audit(ctx context.Context, action, resource string, outcome Outcome, attrs ...slog.Attr) {
	if a := DefaultAuditor(); a != nil {
		a.Audit(ctx, action, resource, outcome, attrs...)
	}
}
