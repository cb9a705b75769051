package awscreds

import (
	"fmt"
	"time"

	"github.com/tenancykit/tenancy/internal/sessionname"
	"github.com/tenancykit/tenancy/tenant"
)

// Option configures a [Provider]. Each With... function documents its
// default; a nil Option is ignored, and an option given its zero value
// (nil, "", 0) leaves the default in place.
type Option func(*config)

type config struct {
	tagKey         string
	tierTagKey     string
	extraTags      func(tenant.Tenant) map[string]string
	transitive     []string
	policyTemplate string
	duration       time.Duration
	expiryWindow   time.Duration
	sessionPrefix  string
	maxSessions    int
	claimed        bool
	now            func() time.Time
}

// Defaults of the options.
const (
	DefaultTagKey        = "TenantId"
	DefaultDuration      = time.Hour
	DefaultExpiryWindow  = 5 * time.Minute
	DefaultMaxSessions   = 10_000
	DefaultSessionPrefix = sessionname.DefaultPrefix
)

// newConfig applies opts, then gives every setting that no option set, or
// that an option set to its zero value, its default.
func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.tagKey == "" {
		c.tagKey = DefaultTagKey
	}
	if c.duration == 0 {
		c.duration = DefaultDuration
	}
	if c.expiryWindow == 0 {
		c.expiryWindow = DefaultExpiryWindow
	}
	if c.maxSessions == 0 {
		c.maxSessions = DefaultMaxSessions
	}
	if c.sessionPrefix == "" {
		c.sessionPrefix = DefaultSessionPrefix
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

func (c *config) validate() error {
	if c.duration < 15*time.Minute || c.duration > 12*time.Hour || c.duration%time.Second != 0 {
		return fmt.Errorf("awscreds: WithDuration: STS takes 15m to 12h in whole seconds, got %v (and the role's MaxSessionDuration must allow it)", c.duration)
	}
	if c.expiryWindow < 0 || c.expiryWindow >= c.duration {
		return fmt.Errorf("awscreds: WithExpiryWindow: %v must be shorter than the duration %v", c.expiryWindow, c.duration)
	}
	if c.maxSessions < 1 {
		return fmt.Errorf("awscreds: WithMaxSessions needs at least 1")
	}
	if err := checkTagKey(c.tagKey); err != nil {
		return fmt.Errorf("awscreds: WithTagKey: %w", err)
	}
	if c.tierTagKey != "" {
		if err := checkTagKey(c.tierTagKey); err != nil {
			return fmt.Errorf("awscreds: WithTierTag: %w", err)
		}
		if equalFoldASCII(c.tierTagKey, c.tagKey) {
			return fmt.Errorf("awscreds: WithTierTag: %q is also the tenant tag key", c.tierTagKey)
		}
	}
	for _, k := range c.transitive {
		if err := checkTagKey(k); err != nil {
			return fmt.Errorf("awscreds: WithTransitiveTags: %w", err)
		}
	}
	if err := checkSessionPrefix(c.sessionPrefix); err != nil {
		return err
	}
	return nil
}

// WithTagKey names the session tag that carries the tenant ID, the one the
// role's policy reads as ${aws:PrincipalTag/KEY}. Default [DefaultTagKey],
// also for "".
func WithTagKey(key string) Option { return func(c *config) { c.tagKey = key } }

// WithTierTag also tags the session with the tenant's tier under key. A
// tenant whose tier changes gets a new session with the new tag. Default:
// no tier tag; "" means none.
func WithTierTag(key string) Option { return func(c *config) { c.tierTagKey = key } }

// WithExtraTags adds the tags f returns for the request's tenant (its
// roles, say). STS allows 50 tags in all. Default none; nil means none.
//
// f runs on every [Provider.Retrieve], so keep it cheap, and its tags are
// part of the session's cache key: requests whose tags differ get sessions
// of their own, each an STS call and an entry counted by
// [WithMaxSessions]. Tags that differ per user (the subject) give every
// user a session; tags that differ per request would call STS every time.
func WithExtraTags(f func(tenant.Tenant) map[string]string) Option {
	return func(c *config) { c.extraTags = f }
}

// WithTransitiveTags marks session tags as transitive, for role chaining:
// each key is sent in AssumeRole's TransitiveTagKeys. Repeated, the keys
// add up. Default none.
func WithTransitiveTags(keys ...string) Option {
	return func(c *config) { c.transitive = append(c.transitive, keys...) }
}

// WithSessionPolicy adds an inline session policy rendered per tenant from
// a text/template: {{.TenantID}}, {{.Tier}} and {{.TagKey}} are available,
// and {{json .TenantID}} quotes a value for JSON. The tier is part of the
// session's cache key, so a tier change renders a new policy. For
// accounts without attribute-based access control; see [SessionPolicy] for
// a ready one.
// The rendered document must be JSON of at most 2,048 characters once
// compacted; New checks a sample. Default none; "" means none.
func WithSessionPolicy(tmpl string) Option { return func(c *config) { c.policyTemplate = tmpl } }

// WithDuration sets how long assumed credentials last: 15 minutes to 12
// hours, in whole seconds. Default [DefaultDuration], also for 0.
func WithDuration(d time.Duration) Option { return func(c *config) { c.duration = d } }

// WithExpiryWindow refreshes credentials this long (less up to half of it,
// at random, so tenants do not refresh together) before they expire; it
// must be shorter than the duration. Default [DefaultExpiryWindow], also
// for 0.
func WithExpiryWindow(d time.Duration) Option { return func(c *config) { c.expiryWindow = d } }

// WithSessionPrefix starts every role session name, so CloudTrail shows
// "tenant-acme": at most 32 letters, digits and _+=,.@-. Default
// [DefaultSessionPrefix], also for "".
func WithSessionPrefix(p string) Option { return func(c *config) { c.sessionPrefix = p } }

// WithMaxSessions caps how many sessions' credentials are cached; the
// least recently used gives way. A session is one tenant's, or more than
// one where tiers or [WithExtraTags] differ between its requests, so the
// cap bounds memory however many users a tenant has. Default
// [DefaultMaxSessions], also for 0; a negative n is an error.
func WithMaxSessions(n int) Option { return func(c *config) { c.maxSessions = n } }

// WithClaimedTenants lets the Provider (and so [Middleware]) hand out
// credentials for a tenant that the request only claimed for itself
// ([tenant.SourceClaimed]: its Host or path, verified by no one). By
// default such a tenant is refused with an error wrapping
// [tenant.ErrNoTenant]: anyone can claim any tenant, and its credentials
// reach its data. Use it only where every request that names a tenant may
// act for it.
func WithClaimedTenants() Option { return func(c *config) { c.claimed = true } }

// WithClock sets the time that credentials handed out by [Provider.Retrieve]
// say they expire at (now: see [Provider]). Default time.Now, also for
// nil. (The SDK's credential caches use the system clock.)
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }
