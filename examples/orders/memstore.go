package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/tenancykit/tenancy/tenant"
)

// memoryStore is a [Store] in process memory: one partition per tenant,
// lost on restart and not bounded in size. It is safe for concurrent use.
type memoryStore struct {
	now func() time.Time

	mu         sync.RWMutex
	partitions map[string]*partition // by tenant ID
}

// partition holds one tenant's orders.
type partition struct {
	byID  map[string]Order
	order []string // IDs, oldest first
}

var _ Store = (*memoryStore)(nil)

func newMemoryStore() *memoryStore {
	return &memoryStore{now: time.Now, partitions: make(map[string]*partition)}
}

// tenantOf returns the tenant the store acts for.
func tenantOf(ctx context.Context) (tenant.Tenant, error) {
	t, ok := tenant.FromContext(ctx)
	if !ok || t.ID == "" {
		return tenant.Tenant{}, ErrNoTenant
	}
	return t, nil
}

func (s *memoryStore) Create(ctx context.Context, in NewOrder) (Order, error) {
	t, err := tenantOf(ctx)
	if err != nil {
		return Order{}, err
	}
	o := newOrder(t, in, s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.partitions[t.ID]
	if p == nil {
		p = &partition{byID: make(map[string]Order)}
		s.partitions[t.ID] = p
	}
	for {
		o.ID = newOrderID()
		if _, taken := p.byID[o.ID]; !taken {
			break
		}
	}
	p.byID[o.ID] = o
	p.order = append(p.order, o.ID)
	return o, nil
}

func (s *memoryStore) Get(ctx context.Context, id string) (Order, error) {
	t, err := tenantOf(ctx)
	if err != nil {
		return Order{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.partitions[t.ID]; p != nil {
		if o, ok := p.byID[id]; ok {
			return o, nil
		}
	}
	return Order{}, ErrNotFound
}

func (s *memoryStore) List(ctx context.Context) ([]Order, error) {
	return s.list(ctx, func(Order) bool { return true })
}

func (s *memoryStore) ListByUser(ctx context.Context, userID string) ([]Order, error) {
	return s.list(ctx, func(o Order) bool { return o.UserID == userID })
}

func (s *memoryStore) list(ctx context.Context, keep func(Order) bool) ([]Order, error) {
	t, err := tenantOf(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Order{}
	if p := s.partitions[t.ID]; p != nil {
		for _, id := range p.order {
			if o := p.byID[id]; keep(o) {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// newOrderID returns 16 random hex characters: IDs that cannot be guessed
// from one another, so an ID says nothing about other orders.
func newOrderID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails; crashes the program on a broken system
	return hex.EncodeToString(b[:])
}
