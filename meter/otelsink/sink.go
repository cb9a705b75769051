package otelsink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

// ScopeName is the instrumentation scope of the sink's meter.
const ScopeName = "github.com/tenancykit/tenancy/meter/otelsink"

// InstrumentPrefix starts the name of every instrument of [InstrumentName],
// so that usage metrics are found together and never collide with a
// service's own instruments, such as otelhttp's.
const InstrumentPrefix = "tenancy.usage."

// Attribute keys of every data point, besides the record's dimensions. A
// dimension with one of these names is hidden by it.
const (
	TenantIDKey = tenant.IDKey
	TierKey     = tenant.TierKey
	ServiceKey  = attribute.Key("service")
)

// Values of the tenant.id and tenant.tier attributes that are not a tenant's.
const (
	// Unattributed is the tenant.id of usage that had no tenant.
	Unattributed = "unattributed"
	// Overflow is the tenant.id of tenants past [WithMaxTenants].
	Overflow = meter.Overflow
	// UnknownTier is the tier of records that carry none.
	UnknownTier = "unknown"
)

// ErrProviderClosed is returned by Write once the MeterProvider has been
// shut down: records written then would be lost.
var ErrProviderClosed = errors.New("otelsink: the MeterProvider is shut down")

// Sink turns [meter.Record]s into OpenTelemetry metrics: each record adds
// its value to the Float64Counter of its meter, or, for a meter of time
// (milliseconds, seconds, microseconds), records it in the meter's
// Float64Histogram, with the attributes tenant.id, tenant.tier, service and the
// record's dimensions. It is a [meter.Sink]; a Sink is safe for concurrent
// use.
type Sink struct {
	provider metric.MeterProvider
	meter    metric.Meter
	// noopAtStart is set when the provider gave a no-op meter from the
	// start: it was chosen to discard metrics, not shut down since.
	noopAtStart bool
	cfg         config

	mu          sync.Mutex
	instruments map[string]instrument // by meter name
	tenants     map[string]struct{}   // with their own tenant.id
}

var _ meter.Sink = (*Sink)(nil)

// New returns a sink recording into provider, such as the OpenTelemetry
// SDK's *metric.MeterProvider (go.opentelemetry.io/otel/sdk/metric), or
// otel.GetMeterProvider().
func New(provider metric.MeterProvider, opts ...Option) (*Sink, error) {
	if provider == nil {
		return nil, errors.New("otelsink: New needs a MeterProvider")
	}
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	m := provider.Meter(ScopeName)
	_, noopAtStart := m.(noop.Meter)
	return &Sink{
		provider:    provider,
		meter:       m,
		noopAtStart: noopAtStart,
		cfg:         c,
		instruments: make(map[string]instrument),
		tenants:     make(map[string]struct{}),
	}, nil
}

// Write implements [meter.Sink]: it adds each record's value to its
// meter's counter, or records it in its histogram. It fails only when the
// provider was shut down (with [ErrProviderClosed]), so that the
// [meter.Recorder] keeps the records. A record whose meter the provider
// makes no instrument for (a provider of one's own may refuse a name) is
// rejected in a [*meter.DeliveryError], for the Recorder's dead-letter file.
func (s *Sink) Write(ctx context.Context, records []meter.Record) error {
	if s.closed() {
		return ErrProviderClosed
	}
	var (
		rejected []meter.RejectedRecord
		errs     []error
	)
	for i := range records {
		r := &records[i]
		in, err := s.instrument(r)
		if err != nil && in == (instrument{}) {
			rejected = append(rejected, meter.RejectedRecord{Index: i, Reason: err.Error()})
			errs = append(errs, err)
			continue
		}
		in.record(ctx, r.Value, s.attributes(r))
	}
	if len(rejected) == 0 {
		return nil
	}
	return &meter.DeliveryError{Rejected: rejected, Err: errors.Join(errs...)}
}

// closed reports whether the provider was shut down since New. The SDK's
// provider gives a no-op meter once shut down; the instruments made
// before then take measurements that no reader will ever collect.
func (s *Sink) closed() bool {
	if s.noopAtStart {
		return false
	}
	_, isNoop := s.provider.Meter(ScopeName).(noop.Meter)
	return isNoop
}

// instrument records the values of one meter: a counter, or a histogram
// for a meter of time.
type instrument struct {
	counter   metric.Float64Counter
	histogram metric.Float64Histogram
}

func (in instrument) record(ctx context.Context, v float64, attrs attribute.Set) {
	if in.histogram != nil {
		in.histogram.Record(ctx, v, metric.WithAttributeSet(attrs))
		return
	}
	in.counter.Add(ctx, v, metric.WithAttributeSet(attrs))
}

// instrument returns the instrument of r's meter, made at its first record
// with the unit of that record. It is the zero instrument only when the
// meter refused to make one; an instrument made with a warning (an invalid
// name) is used, and the warning goes to the OpenTelemetry error handler.
func (s *Sink) instrument(r *meter.Record) (instrument, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.instruments[r.Meter]; ok {
		return in, nil
	}
	var (
		in   instrument
		err  error
		kind = "counter"
		name = s.cfg.name(r.Meter)
		unit = metric.WithUnit(Unit(r.Unit))
		desc = metric.WithDescription(fmt.Sprintf("Usage of %s per tenant, from github.com/tenancykit/tenancy/meter.", r.Meter))
	)
	if bounds, isTime := timeBuckets(r.Unit); isTime {
		kind = "histogram"
		desc = metric.WithDescription(fmt.Sprintf("Usage of %s per tenant and window, from github.com/tenancykit/tenancy/meter.", r.Meter))
		in.histogram, err = s.meter.Float64Histogram(name, unit, desc, metric.WithExplicitBucketBoundaries(bounds...))
	} else {
		in.counter, err = s.meter.Float64Counter(name, unit, desc)
	}
	if err != nil {
		err = fmt.Errorf("otelsink: %s of meter %q: %w", kind, r.Meter, err)
		otel.Handle(err)
	}
	if in.counter == nil && in.histogram == nil {
		if err == nil {
			err = fmt.Errorf("otelsink: %s of meter %q: the MeterProvider made none", kind, r.Meter)
		}
		return instrument{}, err
	}
	s.instruments[r.Meter] = in
	return in, nil
}

// msBuckets are the bucket boundaries of a histogram in milliseconds: a
// record is a tenant's time on a meter in one window, from a few
// milliseconds to hours of work done in parallel.
var msBuckets = []float64{0, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000, 3600000}

// timeBuckets returns the bucket boundaries of a meter in unit u, and
// whether u is a unit of time, whose meter is a histogram.
func timeBuckets(u string) ([]float64, bool) {
	var scale float64
	switch u {
	case meter.UnitMilliseconds:
		scale = 1
	case meter.UnitSeconds:
		scale = 1e-3
	case "Microseconds":
		scale = 1e3
	default:
		return nil, false
	}
	b := make([]float64, len(msBuckets))
	for i, ms := range msBuckets {
		b[i] = ms * scale
	}
	return b, true
}

// attributes returns the attributes of r's data point.
func (s *Sink) attributes(r *meter.Record) attribute.Set {
	kvs := make([]attribute.KeyValue, 0, len(r.Dimensions)+3)
	for k, v := range r.Dimensions {
		kvs = append(kvs, attribute.String(k, v))
	}
	tier := r.Tier
	if tier == "" {
		tier = UnknownTier
	}
	// Last wins in a Set: the sink's keys hide dimensions of the same name.
	kvs = append(kvs, TenantIDKey.String(s.tenantID(r)), TierKey.String(tier), ServiceKey.String(r.Service))
	return attribute.NewSet(kvs...)
}

// tenantID returns the tenant.id of r: its tenant's, while fewer than the
// maximum of tenants have been seen, else [Overflow].
func (s *Sink) tenantID(r *meter.Record) string {
	if r.Unattributed || r.TenantID == "" {
		return Unattributed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tenants[r.TenantID]; ok {
		return r.TenantID
	}
	if len(s.tenants) < s.cfg.maxTenants {
		s.tenants[r.TenantID] = struct{}{}
		return r.TenantID
	}
	return Overflow
}

// InstrumentName is the default name of a meter's instrument: [InstrumentPrefix]
// and the meter's name, such as "tenancy.usage.http.requests", in the
// characters OpenTelemetry accepts (letters, digits and _ . - /; others
// become _) and at most its 255 characters.
func InstrumentName(meterName string) string {
	b := []byte(InstrumentPrefix + meterName)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-/", c) >= 0) {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 255)])
}

// units maps the CloudWatch units of meter to UCUM, which OpenTelemetry
// uses.
var units = map[string]string{
	meter.UnitCount:        "{count}",
	meter.UnitBytes:        "By",
	meter.UnitMilliseconds: "ms",
	meter.UnitSeconds:      "s",
	meter.UnitNone:         "1",
	"Microseconds":         "us",
	"Kilobytes":            "kBy",
	"Megabytes":            "MBy",
	"Gigabytes":            "GBy",
	"Terabytes":            "TBy",
	"Bits":                 "bit",
	"Kilobits":             "kbit",
	"Megabits":             "Mbit",
	"Gigabits":             "Gbit",
	"Terabits":             "Tbit",
	"Percent":              "%",
	"Count/Second":         "{count}/s",
	"Bytes/Second":         "By/s",
	"Kilobytes/Second":     "kBy/s",
	"Megabytes/Second":     "MBy/s",
	"Gigabytes/Second":     "GBy/s",
	"Terabytes/Second":     "TBy/s",
	"Bits/Second":          "bit/s",
	"Kilobits/Second":      "kbit/s",
	"Megabits/Second":      "Mbit/s",
	"Gigabits/Second":      "Gbit/s",
	"Terabits/Second":      "Tbit/s",
}

// Unit returns the UCUM unit, as OpenTelemetry wants it, of a record's
// unit: "{count}" for Count, "By" for Bytes, "ms", "s", "1" for None, and
// so on for every CloudWatch unit; "{count}" when empty (the meter
// package's default unit); any other unit as it is.
func Unit(u string) string {
	if u == "" {
		return units[meter.UnitCount]
	}
	if ucum, ok := units[u]; ok {
		return ucum
	}
	return u
}
