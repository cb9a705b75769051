package tenancylambda

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tenancykit/tenancy/internal/recovered"
	"github.com/tenancykit/tenancy/message"
)

// handleRecovered returns h.HandleMessage(ctx, m), or, when the handler
// panicked, a failure that names the panic, logged with its stack: the
// record fails and the batch's other records keep their outcomes, where
// a panic out of the invocation would have Lambda deliver the whole batch
// again.
func handleRecovered(ctx context.Context, h message.Handler, m *message.Message, logger *slog.Logger) error {
	err := recovered.Handle(ctx, h, m)
	if pe, ok := err.(*recovered.PanicError); ok {
		logger.ErrorContext(ctx, "tenancylambda: the handler panicked; the message fails", "source", m.Source, "message_id", m.ID,
			"panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
	return err
}
