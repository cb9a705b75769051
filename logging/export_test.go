package logging

import "time"

// WithAccessClock sets the time source of AccessLog, for duration_ms.
func WithAccessClock(now func() time.Time) AccessOption {
	return func(c *accessConfig) { c.now = now }
}

// SetAuditClock sets the time source of a.
func SetAuditClock(a *Auditor, now func() time.Time) { a.now = now }

// ResetDefaultAuditor forgets the auditor of SetDefaultAuditor, so that
// DefaultAuditor falls back to slog.Default() again.
func ResetDefaultAuditor() { defaultAuditor.Store(nil) }

// AccessConfig lets tests compose AccessOptions.
type AccessConfig = accessConfig
