package message

import (
	"errors"
	"fmt"
	"time"
)

// Outcome is what a transport does with a message once its handler
// returned.
type Outcome uint8

// The outcomes, by the error the handler returned.
const (
	// Acked: nil. The message is done; the transport deletes or
	// acknowledges it.
	Acked Outcome = iota
	// Deferred: [Defer]. The message is to be delivered again after the
	// delay (an SQS visibility timeout, a stream's pending entry claimed
	// later). It is never dead-lettered for being deferred.
	Deferred
	// Rejected: [Reject] or a [*RejectError]. No retry can help: the
	// transport dead-letters the message with the reason.
	Rejected
	// Failed: any other error. The transport's retry policy decides
	// (redelivery, then its dead-letter path after its maximum of
	// deliveries).
	Failed
)

// String returns "acked", "deferred", "rejected" or "failed".
func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Deferred:
		return "deferred"
	case Rejected:
		return "rejected"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// OutcomeOf classifies the error a [Handler] returned, for transports:
// for Deferred, after is how long to wait before the next delivery; for
// Rejected, reason is the dead-letter reason ("by:reason", such as
// "stamp:expired" or "handler:invalid_order"). Wrapped errors are
// classified by what they wrap.
func OutcomeOf(err error) (o Outcome, after time.Duration, reason string) {
	if err == nil {
		return Acked, 0, ""
	}
	var d *deferError
	if errors.As(err, &d) {
		return Deferred, d.after, ""
	}
	var r *RejectError
	if errors.As(err, &r) {
		return Rejected, 0, r.By + ":" + r.Reason
	}
	return Failed, 0, ""
}

// Defer returns the error that asks for a message to be delivered again
// after the given delay (at least zero): the tenant is over its budget,
// or something the message needs is not there yet. A deferred message is
// never dead-lettered for it.
func Defer(after time.Duration) error {
	return &deferError{after: max(after, 0)}
}

// deferError is a deferral. The layer that defers a message for a cause
// of its own records who and why in the message's state.
type deferError struct {
	after time.Duration
}

func (e *deferError) Error() string { return "message: deferred for " + e.after.String() }

// Reject returns the error that dead-letters a message that no retry can
// help (a payload the handler cannot read), with reason: a short
// machine-readable cause, such as "invalid_order". Its By is "handler".
func Reject(reason string) error {
	return &RejectError{By: "handler", Reason: reason}
}

// RejectError dead-letters a message. The trust modes return one for a
// message they refuse, and such a message never runs as any tenant.
type RejectError struct {
	// By names who refused the message: "stamp", "sender_session",
	// "unverified_attribute", "throttle", "awscreds", or "handler" for
	// [Reject].
	By string
	// Reason is the short machine-readable cause: "expired", "replayed",
	// "body_digest", "tenant_missing", ...
	Reason string
	// Err is what caused it, for logs, or nil. It never holds a stamp.
	Err error
	// Tenant is the tenant the refused message claimed, unverified, when
	// the trust mode could read a valid tenant ID from it (a stamp's
	// tenant claim, a tenant attribute); "" otherwise. It is for audit
	// records (logging.MessageLog writes it as claimed_tenant_id): never
	// act on it.
	Tenant string
}

func (e *RejectError) Error() string {
	s := "message: rejected by " + e.By + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *RejectError) Unwrap() error { return e.Err }
