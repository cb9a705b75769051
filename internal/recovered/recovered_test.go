package recovered_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/internal/recovered"
	"github.com/tenancykit/tenancy/message"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestHandle: a panic becomes a failure that names it and keeps the
// stack; a handler's own outcome passes unchanged.
func TestHandle(t *testing.T) {
	boom := message.HandlerFunc(func(context.Context, *message.Message) error { panic("boom") })
	err := recovered.Handle(context.Background(), boom, &message.Message{ID: "1"})
	var pe *recovered.PanicError
	if !errors.Is(err, recovered.ErrPanicked) || !errors.As(err, &pe) || pe.Value != "boom" || !strings.Contains(string(pe.Stack), "recovered_test") {
		t.Fatalf("err %v: want a PanicError of boom with the stack", err)
	}
	if o, _, _ := message.OutcomeOf(err); o != message.Failed {
		t.Errorf("outcome %v, want failed", o)
	}
	deferred := message.HandlerFunc(func(context.Context, *message.Message) error { return message.Defer(0) })
	if o, _, _ := message.OutcomeOf(recovered.Handle(context.Background(), deferred, &message.Message{})); o != message.Deferred {
		t.Errorf("outcome %v, want deferred", o)
	}
}
