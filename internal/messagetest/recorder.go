package messagetest

import (
	"context"
	"fmt"
	"sync"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// Recorder records each delivery a transport made: by message ID, the
// tenant it ran as and its delivery count ("acme#2"), and the message IDs
// in the order delivered. The zero Recorder is ready to use.
type Recorder struct {
	mu    sync.Mutex
	ran   map[string]string
	order []string
}

// Handler returns a handler that records each delivery, then returns what
// next returns (nil when next is nil).
func (r *Recorder) Handler(next message.HandlerFunc) message.Handler {
	return message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		r.mu.Lock()
		if r.ran == nil {
			r.ran = map[string]string{}
		}
		r.ran[m.ID] = fmt.Sprintf("%s#%d", tn.ID, m.Deliveries)
		r.order = append(r.order, m.ID)
		r.mu.Unlock()
		if next != nil {
			return next(ctx, m)
		}
		return nil
	})
}

// Got returns, by message ID, the tenant and count of its last delivery.
func (r *Recorder) Got() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.ran))
	for k, v := range r.ran {
		out[k] = v
	}
	return out
}

// Delivered returns the message IDs in the order delivered, a message
// delivered twice twice.
func (r *Recorder) Delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order...)
}

// Count returns how many deliveries there were.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}
