// Package messagetest holds what the tests of message and its transports
// share.
package messagetest

import (
	"context"
	"sync"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// Seen records the tenant each message ran as, by message ID. The zero
// Seen is ready to use.
type Seen struct {
	mu sync.Mutex
	by map[string]tenant.Tenant
}

// Handler returns a handler that records each message it runs.
func (s *Seen) Handler() message.Handler {
	return message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		t, _ := tenant.FromContext(ctx)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.by == nil {
			s.by = map[string]tenant.Tenant{}
		}
		s.by[m.ID] = t
		return nil
	})
}

// Tenant returns the tenant message id ran as, and whether it ran.
func (s *Seen) Tenant(id string) (tenant.Tenant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.by[id]
	return t, ok
}

// Count returns how many messages ran.
func (s *Seen) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.by)
}
