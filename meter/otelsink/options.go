package otelsink

import "errors"

// Option configures a [Sink].
type Option func(*config)

type config struct {
	maxTenants int
	name       func(meter string) string
}

// DefaultMaxTenants is how many distinct tenant IDs a Sink reports by
// default before it reports further tenants as [Overflow].
const DefaultMaxTenants = 1000

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.maxTenants == 0 {
		c.maxTenants = DefaultMaxTenants
	}
	if c.name == nil {
		c.name = InstrumentName
	}
	return c
}

func (c *config) validate() error {
	if c.maxTenants < 0 {
		return errors.New("otelsink: WithMaxTenants needs at least 1")
	}
	return nil
}

// WithMaxTenants bounds the distinct values of the tenant.id attribute: the
// first n tenant IDs the sink sees keep their own, later ones are reported
// as [Overflow]. Every attribute set is a time series in the metrics
// backend, and billed as one. Default (also for 0) [DefaultMaxTenants].
func WithMaxTenants(n int) Option { return func(c *config) { c.maxTenants = n } }

// WithInstrumentName sets how a meter's name becomes the name of its
// instrument. Default (also for nil) [InstrumentName]. Names OpenTelemetry
// does not accept (see [InstrumentName]) are reported to the OpenTelemetry
// error handler.
func WithInstrumentName(name func(meter string) string) Option {
	return func(c *config) { c.name = name }
}
