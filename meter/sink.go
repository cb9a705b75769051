package meter

import (
	"context"
	"errors"
	"fmt"
)

// Sink delivers records. Write is called from one goroutine at a time. It
// returns nil when every record was delivered; a [*DeliveryError] when
// some were not, or some will never be (it names them); any other error
// when none were delivered, and all may be later. Records that were not
// delivered are sent again later, with the same IDs, after the others
// waiting; records the sink rejects for good are written to the
// dead-letter file ([WithDeadLetter]) and never sent again.
type Sink interface {
	Write(ctx context.Context, records []Record) error
}

// SinkFunc adapts a function to a [Sink].
type SinkFunc func(ctx context.Context, records []Record) error

// Write calls f.
func (f SinkFunc) Write(ctx context.Context, records []Record) error { return f(ctx, records) }

// DeliveryError reports a partial delivery. Records of the slice given to
// Write that it names in neither Failed nor Rejected were delivered.
type DeliveryError struct {
	// Failed are the indexes, in the slice given to Write, of the records
	// that were not delivered and may be later (throttled, a timeout, an
	// internal error): they are sent again after a backoff.
	Failed []int
	// Rejected are the records the destination will never take (too
	// large, malformed for it): written to the dead-letter file with
	// their reason, never sent again. An index in both lists is
	// rejected.
	Rejected []RejectedRecord
	Err      error
}

// RejectedRecord names a record a sink refuses for good, and why.
type RejectedRecord struct {
	Index int // in the slice given to Write
	// Reason says why, for the dead-letter file and the log, such as
	// "1.2 MiB, larger than a Kinesis record can be".
	Reason string
}

func (e *DeliveryError) Error() string {
	if len(e.Rejected) == 0 {
		return fmt.Sprintf("meter: %d records not delivered: %v", len(e.Failed), e.Err)
	}
	return fmt.Sprintf("meter: %d records not delivered, %d rejected: %v", len(e.Failed), len(e.Rejected), e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// ErrUndelivered is wrapped by the error of Shutdown when records could
// neither be delivered nor spooled.
var ErrUndelivered = errors.New("meter: records not delivered")
