package logging

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/tenancykit/tenancy/tenant"
)

// Levels is a base level with per-tenant overrides: debug for one tenant
// while everyone else stays at info. Overrides change at run time; reading
// them costs an atomic load, and nothing more while there are none. A
// Levels is safe for concurrent use.
type Levels struct {
	base      slog.Leveler
	mu        sync.Mutex // serialises writers
	overrides atomic.Pointer[map[string]slog.Level]
}

// NewLevels returns Levels with base for every tenant without an override
// and for records without a tenant. A *slog.LevelVar base can be changed at
// run time too.
func NewLevels(base slog.Leveler) *Levels {
	if base == nil {
		base = slog.LevelInfo
	}
	return &Levels{base: base}
}

// Set gives one tenant its own level.
func (l *Levels) Set(tenantID string, level slog.Level) {
	l.update(func(m map[string]slog.Level) { m[tenantID] = level })
}

// Delete puts a tenant back on the base level.
func (l *Levels) Delete(tenantID string) {
	l.update(func(m map[string]slog.Level) { delete(m, tenantID) })
}

func (l *Levels) update(f func(map[string]slog.Level)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]slog.Level)
	if cur := l.overrides.Load(); cur != nil {
		m = maps.Clone(*cur)
	}
	f(m)
	if len(m) == 0 {
		l.overrides.Store(nil)
		return
	}
	l.overrides.Store(&m)
}

// For returns the level for ctx's tenant.
func (l *Levels) For(ctx context.Context) slog.Level {
	if m := l.overrides.Load(); m != nil && ctx != nil {
		if t, ok := tenant.FromContext(ctx); ok {
			if lvl, ok := (*m)[t.ID]; ok {
				return lvl
			}
		}
	}
	return l.base.Level()
}
