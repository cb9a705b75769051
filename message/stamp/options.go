package stamp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/metric"
)

// Option configures a [Signer] or a [Verifier]. Each With… function says
// what it applies to and its default; an option given where it does not
// apply is reported by the constructor. A nil Option is ignored, and an
// option given its zero value leaves the default.
type Option func(*config)

// Defaults of the options, in one place.
const (
	// DefaultMaxAge is how long a stamp is valid after it was made.
	DefaultMaxAge = 24 * time.Hour
	// DefaultReplayCacheSize is about how many stamps a Verifier
	// remembers to catch replays.
	DefaultReplayCacheSize = 100_000
)

type config struct {
	now           func() time.Time
	maxAge        time.Duration
	jwksURL       string
	jwks          []byte
	destinations  []string
	tiers         *tenant.Tiers
	replaySize    int
	replayStore   ReplayStore
	authzOpts     []authz.Option
	meterProvider metric.MeterProvider

	given []string // the options given, by name
}

// newConfig applies opts for the constructor named by, and reports an
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
			return c, fmt.Errorf("stamp: %s does not apply to %s (it takes %s)", name, by, strings.Join(allowed, ", "))
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxAge == 0 {
		c.maxAge = DefaultMaxAge
	}
	if c.tiers == nil {
		c.tiers = tenant.DefaultTiers
	}
	if c.replaySize == 0 {
		c.replaySize = DefaultReplayCacheSize
	}
	return c, nil
}

func (c *config) give(name string) { c.given = append(c.given, name) }

// WithClock sets the time source: of a Signer's issue and expiry times,
// of a Verifier's expiry checks and replay cache. Default time.Now, also
// for nil.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now; c.give("WithClock") }
}

// WithMaxAge sets how long a Signer's stamps are valid. A message that
// waits longer (a long outage, a redrive from a dead-letter queue) is
// refused as expired and needs a new stamp from a service trusted to make
// one. Default [DefaultMaxAge], also for 0.
func WithMaxAge(d time.Duration) Option {
	return func(c *config) { c.maxAge = d; c.give("WithMaxAge") }
}

// WithJWKSURL has a Verifier fetch the producer's public keys from the
// JWK Set at url (where the producer serves its Signer.JWKS), refreshing
// them every hour and when a stamp names a key it does not know, at most
// once per 10 seconds (authz's key machinery; tune it with
// [WithAuthzOptions]). A Verifier needs this or [WithJWKS].
func WithJWKSURL(url string) Option {
	return func(c *config) { c.jwksURL = url; c.give("WithJWKSURL") }
}

// WithJWKS has a Verifier check stamps with the keys of a JWK Set
// document held in memory: one shipped with the configuration, or the
// Signer.JWKS of a producer in the same process. A Verifier needs this or
// [WithJWKSURL].
func WithJWKS(doc []byte) Option {
	return func(c *config) { c.jwks = doc; c.give("WithJWKS") }
}

// ForDestination makes a Verifier accept only stamps made for one of
// names (the destination a producer named with [WithDestination]).
// Default: only stamps made for no destination are accepted; a stamp
// that names one is for the consumers that name it (RFC 7519's audience),
// and is refused "destination".
func ForDestination(names ...string) Option {
	return func(c *config) { c.destinations = append(c.destinations, names...); c.give("ForDestination") }
}

// WithTiers sets the tiers a stamp's tier may name, for a Verifier.
// Default tenant.DefaultTiers, also for nil.
func WithTiers(ts *tenant.Tiers) Option {
	return func(c *config) { c.tiers = ts; c.give("WithTiers") }
}

// WithReplayCacheSize bounds how many stamps a Verifier remembers to catch
// a replay: about the last n it accepted, each until it expires. A stamp
// replayed after its first delivery left the cache passes, unless a
// [WithReplayStore] remembers it; see the package documentation. Default [DefaultReplayCacheSize], also for 0.
func WithReplayCacheSize(n int) Option {
	return func(c *config) { c.replaySize = n; c.give("WithReplayCacheSize") }
}

// WithAuthzOptions passes further options to the authz.Verifier that
// checks a Verifier's stamps: an HTTP client for the JWK Set, its refresh
// interval and cooldown, the algorithms, a leeway, the size of the
// verified-stamp cache. The claim mapping, token type, audience, tiers,
// clock and key source are the Verifier's own and win over these.
// Default none.
func WithAuthzOptions(opts ...authz.Option) Option {
	return func(c *config) { c.authzOpts = append(c.authzOpts, opts...); c.give("WithAuthzOptions") }
}

// WithMeterProvider sets where a Verifier counts the messages [Trusted]
// refuses (tenancy.message.refused). Default, also for nil: the global
// OpenTelemetry meter provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp; c.give("WithMeterProvider") }
}
