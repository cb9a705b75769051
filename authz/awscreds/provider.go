package awscreds

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/tenancykit/tenancy/tenant"
)

// Provider hands out AWS credentials scoped to the tenant in the request
// context: the role is assumed with the tenant's ID as a session tag (and
// optionally its tier, extra tags and an inline session policy), and the
// result is cached in an aws.CredentialsCache, refreshed early and by a
// single caller. A session whose refresh fails gets an error; the others
// keep their cached credentials until they expire.
//
// A cached session is keyed by everything that goes into it: the tenant ID,
// the tier where [WithTierTag] or [WithSessionPolicy] puts it in the session,
// and the tags [WithExtraTags] returns for the request's tenant. Two
// requests share credentials only when STS would have been asked for the
// same session: a user whose extra tags differ from another's, or a tenant
// whose tier changed, gets a session of its own.
//
// Provider is itself an aws.CredentialsProvider whose Retrieve reads the
// tenant from the context the SDK passes it, so ONE service client serves
// every tenant: set it as the Credentials of an aws.Config (see
// [Provider.Config]) and pass each request's context to the client's
// calls. Never wrap it in aws.NewCredentialsCache: that cache cannot tell
// tenants apart. (The credentials it returns say they expire at once, so
// even a wrapping cache asks again on every call, and IsCredentialsProvider
// reports it as a cache so the SDK does not wrap it.)
//
// A tenant that the request only claimed for itself ([tenant.SourceClaimed],
// such as one read from the Host header) gets no credentials unless
// [WithClaimedTenants] allows it.
//
// A Provider is safe for concurrent use.
type Provider struct {
	client  stscreds.AssumeRoleAPIClient
	roleARN string
	cfg     config
	policy  *template.Template

	mu       sync.Mutex
	sessions map[sessionKey]*list.Element // of *session
	lru      list.List                    // front: the most recently used
}

// sessionKey is everything a session is made of. AssumeRole's input is
// built from the key alone (and the extra tags it encodes), so requests
// with equal keys would ask STS for the same session.
type sessionKey struct {
	tenantID string
	// tier is the tier's name where it reaches the session (WithTierTag,
	// WithSessionPolicy), "" otherwise: a tier change that STS never sees
	// does not need a new session.
	tier string
	// extra is WithExtraTags' tags for the request, encoded by encodeTags;
	// "" without the option.
	extra string
}

type session struct {
	key   sessionKey
	cache *aws.CredentialsCache
}

// New returns a Provider that assumes roleARN through client (an
// *sts.Client, or a fake in tests). Configuration mistakes — a malformed
// role ARN, a duration STS refuses, too many tags, an invalid tag key, a
// session policy template that does not render to JSON of at most 2,048
// characters — are reported here.
func New(client stscreds.AssumeRoleAPIClient, roleARN string, opts ...Option) (*Provider, error) {
	if client == nil {
		return nil, errors.New("awscreds: New needs an STS client")
	}
	if err := checkRoleARN(roleARN); err != nil {
		return nil, err
	}
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	p := &Provider{client: client, roleARN: roleARN, cfg: c, sessions: make(map[sessionKey]*list.Element)}
	if c.policyTemplate != "" {
		tmpl, err := parsePolicyTemplate(c.policyTemplate)
		if err != nil {
			return nil, err
		}
		p.policy = tmpl
	}
	return p, nil
}

var _ aws.CredentialsProvider = (*Provider)(nil)

// noTenantError is the refusal of a context without a tenant: for
// errors.Is it is [tenant.ErrNoTenant], the module's one error for a
// missing tenant, and its text names this package.
type noTenantError struct{ reason string }

func (e *noTenantError) Error() string {
	if e.reason == "" {
		return "awscreds: no tenant in context"
	}
	return "awscreds: no tenant in context: " + e.reason
}

func (e *noTenantError) Unwrap() error { return tenant.ErrNoTenant }

// The refusals of Retrieve, made once: it runs on every call.
var (
	errNoTenant = &noTenantError{}
	errClaimed  = &noTenantError{reason: "the tenant was claimed by the request, not verified (allow claimed tenants with WithClaimedTenants)"}
)

// Retrieve returns the credentials of the tenant in ctx. With no tenant,
// or a claimed one without [WithClaimedTenants], the error wraps
// [tenant.ErrNoTenant]; when STS fails it is an [*STSError].
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	t, ok := tenant.FromContext(ctx)
	if !ok || t.ID == "" {
		return aws.Credentials{}, errNoTenant
	}
	if !t.Source.Verified() && !p.cfg.claimed {
		return aws.Credentials{}, errClaimed
	}
	s, err := p.session(t)
	if err != nil {
		return aws.Credentials{}, err
	}
	creds, err := s.cache.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, err
	}
	// Marked as expiring now, so that any cache wrapped around the
	// Provider by mistake never hands them to another tenant's call.
	creds.CanExpire, creds.Expires = true, p.cfg.now()
	return creds, nil
}

// IsCredentialsProvider reports the Provider as an aws.CredentialsCache,
// so that SDK code that wraps uncached providers leaves it alone.
func (p *Provider) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	switch target.(type) {
	case *aws.CredentialsCache, *Provider:
		return true
	}
	return false
}

// Config returns a copy of base whose credentials are the Provider's.
func (p *Provider) Config(base aws.Config) aws.Config {
	cfg := base.Copy()
	cfg.Credentials = p
	return cfg
}

// Sessions returns how many sessions have cached credentials: one per
// tenant, more where tiers or extra tags differ between a tenant's
// requests. [WithMaxSessions] caps it.
func (p *Provider) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// session returns the cached session of t, creating it, and evicting the
// least recently used session past the cap.
func (p *Provider) session(t tenant.Tenant) (*session, error) {
	key := sessionKey{tenantID: t.ID}
	if p.cfg.tierTagKey != "" || p.policy != nil {
		key.tier = t.Tier.String()
	}
	var extra map[string]string
	if p.cfg.extraTags != nil {
		extra = p.cfg.extraTags(t)
		key.extra = encodeTags(extra)
	}
	if s := p.cached(key); s != nil {
		return s, nil
	}
	// A new session: its input is built, and checked, outside the lock.
	in, err := p.assumeRoleInput(key, extra)
	if err != nil {
		return nil, err
	}
	s := &session{
		key: key,
		cache: aws.NewCredentialsCache(p.assumer(t.ID, in), func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = p.cfg.expiryWindow
			o.ExpiryWindowJitterFrac = 0.5
		}),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.sessions[key]; ok { // another request made it meanwhile
		p.lru.MoveToFront(e)
		return e.Value.(*session), nil
	}
	if len(p.sessions) >= p.cfg.maxSessions {
		oldest := p.lru.Back()
		p.lru.Remove(oldest)
		delete(p.sessions, oldest.Value.(*session).key)
	}
	p.sessions[key] = p.lru.PushFront(s)
	return s, nil
}

// cached returns the session of key, or nil.
func (p *Provider) cached(key sessionKey) *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.sessions[key]
	if !ok {
		return nil
	}
	if p.lru.Front() != e {
		p.lru.MoveToFront(e)
	}
	return e.Value.(*session)
}

// assumer is the provider a session's cache refreshes from: it asks STS,
// always with the same input.
func (p *Provider) assumer(tenantID string, in *sts.AssumeRoleInput) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		out, err := p.client.AssumeRole(ctx, in)
		if err != nil {
			return aws.Credentials{}, &STSError{TenantID: tenantID, Err: err}
		}
		if out.Credentials == nil || out.Credentials.AccessKeyId == nil || out.Credentials.Expiration == nil {
			return aws.Credentials{}, &STSError{TenantID: tenantID, Err: errors.New("AssumeRole returned no credentials")}
		}
		return aws.Credentials{
			AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
			SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
			SessionToken:    aws.ToString(out.Credentials.SessionToken),
			Source:          "tenancy/awscreds",
			CanExpire:       true,
			Expires:         *out.Credentials.Expiration,
		}, nil
	})
}

// assumeRoleInput builds the AssumeRole call of the session key, whose
// extra tags are extra, checking what STS would refuse so that the error
// says what is wrong. It reads nothing but its arguments and the
// configuration: what is not in the key cannot reach the session.
func (p *Provider) assumeRoleInput(key sessionKey, extra map[string]string) (*sts.AssumeRoleInput, error) {
	tags := map[string]string{p.cfg.tagKey: key.tenantID}
	if p.cfg.tierTagKey != "" && key.tier != "" {
		tags[p.cfg.tierTagKey] = key.tier
	}
	for k, v := range extra {
		if _, taken := tags[k]; taken {
			return nil, fmt.Errorf("awscreds: extra tag %q collides with a tag the provider sets", k)
		}
		tags[k] = v
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(p.roleARN),
		RoleSessionName: aws.String(sessionName(p.cfg.sessionPrefix, key.tenantID)),
		DurationSeconds: aws.Int32(int32(p.cfg.duration / time.Second)),
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(tags) {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if len(p.cfg.transitive) > 0 {
		in.TransitiveTagKeys = append([]string(nil), p.cfg.transitive...)
	}
	if p.policy != nil {
		doc, err := renderPolicy(p.policy, key.tenantID, key.tier, p.cfg.tagKey)
		if err != nil {
			return nil, err
		}
		in.Policy = aws.String(doc)
	}
	return in, nil
}

// encodeTags encodes tags as one string, the same for equal maps and
// different for different ones: sorted by key, each key and value preceded
// by its length, so no choice of characters makes two maps collide.
func encodeTags(tags map[string]string) string {
	if len(tags) == 0 {
		return ""
	}
	var buf [8]string
	keys := buf[:0]
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := 0
	for _, k := range keys {
		n += len(k) + len(tags[k]) + 8
	}
	var b strings.Builder
	b.Grow(n)
	for _, k := range keys {
		v := tags[k]
		b.WriteString(strconv.Itoa(len(k)))
		b.WriteByte(':')
		b.WriteString(k)
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}

// STSError is a failed AssumeRole for one tenant.
type STSError struct {
	TenantID string
	Err      error
}

func (e *STSError) Error() string {
	return fmt.Sprintf("awscreds: AssumeRole for tenant %q: %v", e.TenantID, e.Err)
}

func (e *STSError) Unwrap() error { return e.Err }
