package awscreds

import (
	"context"
	"errors"
	"fmt"
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
// context: the role is assumed once per tenant with the tenant's ID as a
// session tag (and optionally an inline session policy), and the result is
// cached per tenant in an aws.CredentialsCache, refreshed early and by a
// single caller. A tenant whose refresh fails gets an error; the others
// keep their cached credentials until they expire.
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
// A Provider is safe for concurrent use.
type Provider struct {
	client  stscreds.AssumeRoleAPIClient
	roleARN string
	cfg     config
	policy  *template.Template

	mu      sync.Mutex
	tenants map[string]*tenantCreds
}

type tenantCreds struct {
	cache    *aws.CredentialsCache
	lastUsed time.Time
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
	p := &Provider{client: client, roleARN: roleARN, cfg: c, tenants: make(map[string]*tenantCreds)}
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

// Retrieve returns the credentials of the tenant in ctx.
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	t, ok := tenant.FromContext(ctx)
	if !ok {
		return aws.Credentials{}, ErrNoTenant
	}
	creds, err := p.cacheFor(t).Retrieve(ctx)
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

// Tenants returns how many tenants have cached credentials.
func (p *Provider) Tenants() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tenants)
}

// cacheFor returns the tenant's credentials cache, creating it, and
// evicting the least recently used tenant past the cap.
func (p *Provider) cacheFor(t tenant.Tenant) *aws.CredentialsCache {
	now := p.cfg.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if tc, ok := p.tenants[t.ID]; ok {
		if now.Sub(tc.lastUsed) > time.Second { // cheap enough to keep approximate
			tc.lastUsed = now
		}
		return tc.cache
	}
	if len(p.tenants) >= p.cfg.maxTenants {
		var oldest string
		var at time.Time
		for id, tc := range p.tenants {
			if oldest == "" || tc.lastUsed.Before(at) {
				oldest, at = id, tc.lastUsed
			}
		}
		delete(p.tenants, oldest)
	}
	tc := &tenantCreds{
		cache: aws.NewCredentialsCache(p.assumer(t), func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = p.cfg.expiryWindow
			o.ExpiryWindowJitterFrac = 0.5
		}),
		lastUsed: now,
	}
	p.tenants[t.ID] = tc
	return tc.cache
}

// assumer is the provider the tenant's cache refreshes from.
func (p *Provider) assumer(t tenant.Tenant) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		in, err := p.assumeRoleInput(t)
		if err != nil {
			return aws.Credentials{}, err
		}
		out, err := p.client.AssumeRole(ctx, in)
		if err != nil {
			return aws.Credentials{}, &STSError{TenantID: t.ID, Err: err}
		}
		if out.Credentials == nil || out.Credentials.AccessKeyId == nil || out.Credentials.Expiration == nil {
			return aws.Credentials{}, &STSError{TenantID: t.ID, Err: errors.New("AssumeRole returned no credentials")}
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

// assumeRoleInput builds the AssumeRole call for t, checking what STS would
// refuse so that the error says what is wrong.
func (p *Provider) assumeRoleInput(t tenant.Tenant) (*sts.AssumeRoleInput, error) {
	tags := map[string]string{p.cfg.tagKey: t.ID}
	if p.cfg.tierTagKey != "" && !t.Tier.IsZero() {
		tags[p.cfg.tierTagKey] = t.Tier.Name()
	}
	if p.cfg.extraTags != nil {
		for k, v := range p.cfg.extraTags(t) {
			if _, taken := tags[k]; taken {
				return nil, fmt.Errorf("awscreds: extra tag %q collides with a tag the provider sets", k)
			}
			tags[k] = v
		}
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(p.roleARN),
		RoleSessionName: aws.String(sessionName(p.cfg.sessionPrefix, t.ID)),
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
		doc, err := renderPolicy(p.policy, t, p.cfg.tagKey)
		if err != nil {
			return nil, err
		}
		in.Policy = aws.String(doc)
	}
	return in, nil
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
