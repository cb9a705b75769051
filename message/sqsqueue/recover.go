package sqsqueue

import (
	"context"
	"fmt"

	"github.com/tenancykit/tenancy/internal/recovered"
	"github.com/tenancykit/tenancy/message"
)

// handle hands m to h. A handler that panics fails m (retried, then
// dead-lettered "max_deliveries"), and the panic is logged: it stops
// neither the worker nor the process, and the batch's other messages are
// settled.
func (w *Worker) handle(ctx context.Context, h message.Handler, m *message.Message) error {
	err := recovered.Handle(ctx, h, m)
	if pe, ok := err.(*recovered.PanicError); ok {
		w.cfg.logger.Error("sqsqueue: the handler panicked; the message fails", "queue", w.source, "message_id", m.ID,
			"deliveries", m.Deliveries, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
	return err
}
