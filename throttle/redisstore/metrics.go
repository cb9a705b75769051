package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The store's metrics. None has a tenant label: a tenant's own decisions
// are counted by the throttle's tenancy.throttle.decisions, by tier.
const (
	metricDecisions = "tenancy.throttle.store.decisions"
	metricErrors    = "tenancy.throttle.store.errors"
	metricSwitches  = "tenancy.throttle.store.switches"
	metricState     = "tenancy.throttle.store.state"
	metricReplicas  = "tenancy.throttle.store.replicas"
)

// How a decision was made: the "mode" attribute of metricDecisions.
const (
	modeShared = "shared" // in Redis
	modeLocal  = "local"  // in this replica's share (throttle.FailLocal)
	modeOpen   = "open"   // admitted unchecked (throttle.FailOpen)
	modeClosed = "closed" // refused (throttle.FailClosed)
)

// The store's states: the "state" attribute of metricState, and the "to"
// attribute of metricSwitches.
const (
	stateShared   = "shared"   // decisions are made in Redis
	stateFallback = "fallback" // each tier's failure policy decides
)

// What went wrong with a call to Redis: the "error" attribute of
// metricErrors.
const (
	errorTimeout     = "timeout"     // no answer within WithTimeout
	errorUnreachable = "unreachable" // no connection
	errorReply       = "reply"       // Redis answered with an error
)

type metrics struct {
	decisions, errors, switches metric.Int64Counter
	mode                        map[string]metric.AddOption
	errorKind                   map[string]metric.AddOption
	to                          map[string]metric.AddOption
	reg                         metric.Registration
}

func newMetrics(mp metric.MeterProvider, s *Store) (*metrics, error) {
	m := mp.Meter("github.com/tenancykit/tenancy/throttle/redisstore")
	var (
		ms  metrics
		err error
	)
	if ms.decisions, err = m.Int64Counter(metricDecisions,
		metric.WithDescription("Decisions of the Redis store, by how they were made: in Redis (shared) or, while Redis is away, by the tier's failure policy (local, open, closed)."),
		metric.WithUnit("{decision}")); err != nil {
		return nil, err
	}
	if ms.errors, err = m.Int64Counter(metricErrors,
		metric.WithDescription("Calls to Redis that failed, by error: timeout, unreachable, reply."),
		metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if ms.switches, err = m.Int64Counter(metricSwitches,
		metric.WithDescription("Switches of the Redis store between shared limits and the failure policies, by the state switched to."),
		metric.WithUnit("{switch}")); err != nil {
		return nil, err
	}
	state, err := m.Int64ObservableGauge(metricState,
		metric.WithDescription("How many Redis (on a Cluster, how many masters the store has used) are in each state: shared, or fallback to the failure policies."),
		metric.WithUnit("1"))
	if err != nil {
		return nil, err
	}
	replicas, err := m.Int64ObservableGauge(metricReplicas,
		metric.WithDescription("Replicas the limits are shared by, as counted in Redis or set with WithReplicas."),
		metric.WithUnit("{replica}"))
	if err != nil {
		return nil, err
	}
	attrs := func(key string, values ...string) map[string]metric.AddOption {
		out := make(map[string]metric.AddOption, len(values))
		for _, v := range values {
			out[v] = metric.WithAttributeSet(attribute.NewSet(attribute.String(key, v)))
		}
		return out
	}
	ms.mode = attrs("mode", modeShared, modeLocal, modeOpen, modeClosed)
	ms.errorKind = attrs("error", errorTimeout, errorUnreachable, errorReply)
	ms.to = attrs("to", stateShared, stateFallback)
	shared := metric.WithAttributeSet(attribute.NewSet(attribute.String("state", stateShared)))
	fallback := metric.WithAttributeSet(attribute.NewSet(attribute.String("state", stateFallback)))
	ms.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var up, down int64
		s.breakers(func(b *breaker) {
			switch {
			case b.down.Load():
				down++
			case b == &s.whole && s.clustered:
				// A Cluster's own breaker stands for masters the client
				// could not name: only counted when down.
			default:
				up++
			}
		})
		o.ObserveInt64(state, up, shared)
		o.ObserveInt64(state, down, fallback)
		o.ObserveInt64(replicas, int64(s.replicas()))
		return nil
	}, state, replicas)
	if err != nil {
		return nil, fmt.Errorf("register callback: %w", err)
	}
	return &ms, nil
}

func (m *metrics) decided(ctx context.Context, mode string) {
	if m.decisions.Enabled(ctx) {
		m.decisions.Add(ctx, 1, m.mode[mode])
	}
}

func (m *metrics) failed(ctx context.Context, err error) {
	if m.errors.Enabled(ctx) {
		m.errors.Add(ctx, 1, m.errorKind[errorKind(err)])
	}
}

func (m *metrics) switched(ctx context.Context, to string) {
	m.switches.Add(ctx, 1, m.to[to])
}

// errorKind sorts a failed call for metricErrors.
func errorKind(err error) string {
	var (
		re redis.Error
		ne net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errorTimeout
	case errors.As(err, &re):
		return errorReply
	default:
		return errorUnreachable
	}
}
