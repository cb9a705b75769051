package message

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/metric"
)

// Option configures a trust mode ([SenderSession], [UnverifiedAttribute]).
// Each With… function says what it applies to and its default; an option
// given where it does not apply makes the trust mode panic when it is
// built. A nil Option is ignored, and an option given its zero value
// leaves the default.
type Option func(*config)

type config struct {
	tiers         *tenant.Tiers
	meterProvider metric.MeterProvider
	sessionPrefix string
	tierAttribute string

	given []string // the options given, by name
}

// newConfig applies opts for the trust mode named by, and reports an
// option that does not apply to it.
func newConfig(by string, allowed []string, opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	for _, name := range c.given {
		if !slices.Contains(allowed, name) {
			return c, fmt.Errorf("message: %s does not apply to %s (it takes %s)", name, by, strings.Join(allowed, ", "))
		}
	}
	if c.tiers == nil {
		c.tiers = tenant.DefaultTiers
	}
	return c, nil
}

func (c *config) give(name string) { c.given = append(c.given, name) }

// WithTiers sets the tiers an attribute's tier may name, for
// SenderSession and UnverifiedAttribute. Default tenant.DefaultTiers, also
// for nil.
func WithTiers(ts *tenant.Tiers) Option {
	return func(c *config) { c.tiers = ts; c.give("WithTiers") }
}

// WithMeterProvider sets where SenderSession or UnverifiedAttribute counts
// the messages it refuses (tenancy.message.refused). Default, also for
// nil: the global OpenTelemetry meter provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp; c.give("WithMeterProvider") }
}

// WithSessionPrefix sets the prefix of the role session names
// SenderSession expects: the awscreds.WithSessionPrefix of the provider
// whose sessions send the messages. Default "tenant-"
// (awscreds.DefaultSessionPrefix), also for "".
func WithSessionPrefix(p string) Option {
	return func(c *config) { c.sessionPrefix = p; c.give("WithSessionPrefix") }
}

// WithTierAttribute reads the tenant's tier from the message attribute
// name, for SenderSession (with a tenant attribute) and
// UnverifiedAttribute. A tier it does not know refuses the message.
// Default: the lowest tier of WithTiers.
func WithTierAttribute(name string) Option {
	return func(c *config) { c.tierAttribute = name; c.give("WithTierAttribute") }
}
