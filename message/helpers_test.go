package message_test

import (
	"context"
	"sync"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// seen records the tenant each message ran as, by message ID.
type seen struct {
	mu sync.Mutex
	by map[string]tenant.Tenant
}

func (s *seen) handler() message.Handler {
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

func (s *seen) tenant(id string) (tenant.Tenant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.by[id]
	return t, ok
}
