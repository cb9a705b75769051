// Package recovered calls a message handler for a transport so that a
// panic in it fails the message instead of the consumer: the transport's
// retry policy then delivers it again and, after its last delivery,
// dead-letters it ("max_deliveries"), as for any other failure.
//
// Without it, a message whose handler panics stops the consumer before
// the message is settled; the message is delivered again to the next
// consumer, which it stops too, and a transport that counts deliveries in
// memory (Kinesis, Kafka) never reaches its maximum: one message would
// stop every consumer of the stream, for ever.
package recovered

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/tenancykit/tenancy/message"
)

// ErrPanicked is wrapped by the error [Handle] returns for a handler that
// panicked.
var ErrPanicked = errors.New("the message handler panicked")

// PanicError is the error of a handler that panicked: the value it
// panicked with and the goroutine's stack at the panic.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("%v: %v", ErrPanicked, e.Value) }

// Unwrap returns ErrPanicked.
func (e *PanicError) Unwrap() error { return ErrPanicked }

// Handle returns h.HandleMessage(ctx, m), or a *PanicError when the
// handler panicked: a failure (message.Failed) for the transport's retry
// policy.
func Handle(ctx context.Context, h message.Handler, m *message.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return h.HandleMessage(ctx, m)
}
