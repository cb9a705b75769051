//go:build !race

package logging_test

import (
	"context"
	"testing"

	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"go.opentelemetry.io/otel/baggage"
)

// TestMessageLogBaggageOnDemand: a message's baggage is parsed only when
// the handler asks for it: a handler that does not costs no allocation
// more for a message with baggage than for one without, and one that does
// finds it.
func TestMessageLogBaggageOnDemand(t *testing.T) {
	logger, _ := newLogger()
	var read bool
	var region string
	h := logging.MessageLog(logger)(asTenant(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		if read {
			region = baggage.FromContext(ctx).Member("region").Value()
		}
		return nil
	})))
	plain := &message.Message{ID: "1", Attributes: map[string]string{"traceparent": "00-" + testTraceID + "-" + testSpanID + "-01"}}
	withBaggage := &message.Message{ID: "1", Attributes: map[string]string{
		"traceparent": "00-" + testTraceID + "-" + testSpanID + "-01",
		"baggage":     "tenant.id=acme,region=eu",
	}}
	allocs := func(m *message.Message) float64 {
		return testing.AllocsPerRun(100, func() {
			if err := h.HandleMessage(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		})
	}
	without, with := allocs(plain), allocs(withBaggage)
	if with > without {
		t.Errorf("a message with baggage costs %v allocations, without %v: the baggage was parsed though no one asked", with, without)
	}
	read = true
	if asked := allocs(withBaggage); asked <= with || region != "eu" {
		t.Errorf("a handler reading the baggage found region %q at %v allocations (%v without reading): want eu, parsed when asked", region, asked, with)
	}
}
