package meter

import (
	"context"
	"errors"
	"fmt"
)

// Sink delivers records. Write is called from one goroutine at a time. It
// returns nil when every record was delivered; a [*DeliveryError] when
// some were and some were not; any other error when none were. Records
// that were not delivered are sent again later, with the same IDs.
type Sink interface {
	Write(ctx context.Context, records []Record) error
}

// SinkFunc adapts a function to a [Sink].
type SinkFunc func(ctx context.Context, records []Record) error

// Write calls f.
func (f SinkFunc) Write(ctx context.Context, records []Record) error { return f(ctx, records) }

// DeliveryError reports a partial delivery: Failed are the indexes, in the
// slice given to Write, of the records that were not delivered.
type DeliveryError struct {
	Failed []int
	Err    error
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("meter: %d records not delivered: %v", len(e.Failed), e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// ErrUndelivered is wrapped by the error of Shutdown when records could
// neither be delivered nor spooled.
var ErrUndelivered = errors.New("meter: records not delivered")
