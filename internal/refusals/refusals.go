// Package refusals counts the messages a trust mode refused, in
// tenancy.message.refused, for the trust modes of package message and of
// message/stamp alike: one metric, under one instrumentation scope,
// whichever package refused.
package refusals

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

const (
	// scope is message's, also for the stamps' refusals: dashboards
	// find every refusal under one scope.
	scope = "github.com/tenancykit/tenancy/message"
	name  = "tenancy.message.refused"
)

// Counter counts refused messages by trust mode and reason. A nil Counter
// counts nothing. It is safe for concurrent use.
type Counter struct {
	counter metric.Int64Counter
	sets    sync.Map // [2]string{by, reason} → metric.AddOption, made once
}

// NewCounter returns a Counter of mp's meter; nil means the global
// OpenTelemetry meter provider.
func NewCounter(mp metric.MeterProvider) *Counter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	c, err := mp.Meter(scope).Int64Counter(name,
		metric.WithDescription("Messages a trust mode refused (dead-lettered, never run as any tenant), by trust mode and reason."),
		metric.WithUnit("{message}"))
	if err != nil {
		c = noop.Int64Counter{}
	}
	return &Counter{counter: c}
}

// Add counts one message refused by the trust mode by for reason.
func (r *Counter) Add(ctx context.Context, by, reason string) {
	if r == nil || !r.counter.Enabled(ctx) {
		return
	}
	k := [2]string{by, reason}
	opt, ok := r.sets.Load(k)
	if !ok {
		opt, _ = r.sets.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("tenancy.trust", by), attribute.String("reason", reason))))
	}
	r.counter.Add(ctx, 1, opt.(metric.AddOption))
}
