package awscreds_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/awscreds"
	"github.com/tenancykit/tenancy/authz/awscreds/ststest"
	"github.com/tenancykit/tenancy/tenant"
)

const tenantRole = "arn:aws:iam::123456789012:role/orders-tenant"

func ctxFor(t testing.TB, id, tier string) context.Context {
	t.Helper()
	tn, err := tenant.New(id, tenant.DefaultTiers.MustLookup(tier))
	if err != nil {
		t.Fatal(err)
	}
	return tenant.NewContext(context.Background(), tn)
}

func newProvider(t testing.TB, srv *ststest.Server, opts ...awscreds.Option) *awscreds.Provider {
	t.Helper()
	p, err := awscreds.New(srv.Client(), tenantRole, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAssumeRoleCarriesTenantTags(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv,
		awscreds.WithTierTag("TenantTier"),
		awscreds.WithExtraTags(func(tn tenant.Tenant) map[string]string { return map[string]string{"CostCenter": "cc-" + tn.ID} }),
		awscreds.WithDuration(30*time.Minute),
		awscreds.WithSessionPolicy(awscreds.SessionPolicy("arn:aws:dynamodb:eu-west-1:123456789012:table/orders", "")),
	)
	creds, err := p.Retrieve(ctxFor(t, "acme", "premium"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIATENANT") || creds.SessionToken == "" {
		t.Fatalf("credentials %+v", creds)
	}
	calls := srv.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d STS calls", len(calls))
	}
	c := calls[0]
	want := map[string]string{"TenantId": "acme", "TenantTier": "premium", "CostCenter": "cc-acme"}
	if diff := cmp.Diff(want, c.Tags); diff != "" {
		t.Errorf("session tags (-want +got):\n%s", diff)
	}
	if c.RoleARN != tenantRole || c.RoleSessionName != "tenant-acme" || c.DurationSeconds != 1800 {
		t.Errorf("call %+v", c)
	}
	if !strings.Contains(c.Policy, `"dynamodb:LeadingKeys":["acme"]`) || strings.Contains(c.Policy, "\n") {
		t.Errorf("session policy not rendered for the tenant and compacted: %s", c.Policy)
	}
}

func TestCredentialsCachedPerTenantAndSingleFlight(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	var wg sync.WaitGroup
	for _, id := range []string{"acme", "globex"} {
		ctx := ctxFor(t, id, "basic")
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := p.Retrieve(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for range 100 {
		p.Retrieve(ctxFor(t, "acme", "basic"))
	}
	if a, g := srv.CallsFor("TenantId", "acme"), srv.CallsFor("TenantId", "globex"); a != 1 || g != 1 {
		t.Fatalf("STS calls: acme %d, globex %d; want one each", a, g)
	}
}

func TestEarlyRefresh(t *testing.T) {
	srv := ststest.Start(t)
	// Credentials that expire within the expiry window are refreshed on
	// the next use, before they run out.
	srv.SetLifetime(2 * time.Minute)
	p := newProvider(t, srv, awscreds.WithExpiryWindow(5*time.Minute))
	ctx := ctxFor(t, "acme", "basic")
	for range 3 {
		if _, err := p.Retrieve(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.CallsFor("TenantId", "acme"); n != 3 {
		t.Fatalf("%d STS calls for credentials always inside the expiry window, want 3", n)
	}
}

func TestSTSFailureHitsOnlyThatTenant(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	acme := ctxFor(t, "acme", "basic")
	if _, err := p.Retrieve(acme); err != nil {
		t.Fatal(err)
	}
	srv.Fail("", "RegionDisabledException") // STS is now down for everyone
	if _, err := p.Retrieve(acme); err != nil {
		t.Fatalf("acme's cached credentials stopped working: %v", err)
	}
	_, err := p.Retrieve(ctxFor(t, "globex", "basic"))
	var se *awscreds.STSError
	if !errors.As(err, &se) || se.TenantID != "globex" {
		t.Fatalf("globex: err = %v, want an *STSError for globex", err)
	}

	h := awscreds.Middleware(p, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for id, want := range map[string]int{"acme": 204, "globex": 503} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctxFor(t, id, "basic")))
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", id, rec.Code, want)
		}
		if want == 503 {
			if rec.Header().Get("Content-Type") != "application/problem+json" || rec.Header().Get("Retry-After") == "" ||
				strings.Contains(rec.Body.String(), "RegionDisabled") {
				t.Errorf("503 response %v %s", rec.Header(), rec.Body)
			}
		}
	}
	srv.Fail("", "")
	if _, err := p.Retrieve(ctxFor(t, "globex", "basic")); err != nil {
		t.Fatalf("after STS recovered: %v", err)
	}
}

func TestTenantsAreBounded(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv, awscreds.WithMaxTenants(3))
	for i := range 10 {
		if _, err := p.Retrieve(ctxFor(t, "tenant-"+strconv.Itoa(i), "basic")); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Tenants(); n != 3 {
		t.Fatalf("%d tenants cached, want the cap of 3", n)
	}
}

func TestRetrieveRefusals(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	if _, err := p.Retrieve(context.Background()); !errors.Is(err, awscreds.ErrNoTenant) {
		t.Errorf("no tenant: %v", err)
	}
	if _, err := p.Retrieve(ctxFor(t, "acme#1", "basic")); !errors.Is(err, awscreds.ErrTagValue) {
		t.Errorf("a tenant ID STS refuses as a tag value: %v", err)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d STS calls for refused requests", n)
	}
}

func TestNewRejectsMistakes(t *testing.T) {
	srv := ststest.Start(t)
	client := srv.Client()
	for name, tc := range map[string]struct {
		role string
		opt  awscreds.Option
		want string
	}{
		"role ARN":       {"orders-tenant", nil, "not an IAM role ARN"},
		"short duration": {tenantRole, awscreds.WithDuration(10 * time.Minute), "15m to 12h"},
		"long duration":  {tenantRole, awscreds.WithDuration(13 * time.Hour), "15m to 12h"},
		"window":         {tenantRole, awscreds.WithExpiryWindow(2 * time.Hour), "shorter than the duration"},
		"reserved key":   {tenantRole, awscreds.WithTagKey("aws:tenant"), "reserved"},
		"tier is tenant": {tenantRole, awscreds.WithTierTag("tenantid"), "also the tenant tag key"},
		"key chars":      {tenantRole, awscreds.WithTagKey("Tenant#Id"), "character STS does not allow"},
		"prefix":         {tenantRole, awscreds.WithSessionPrefix("tenant/"), "WithSessionPrefix"},
		"policy JSON":    {tenantRole, awscreds.WithSessionPolicy(`{"Version": {{.TenantID}}`), "not JSON"},
		"policy size":    {tenantRole, awscreds.WithSessionPolicy(`{"Sid":"` + strings.Repeat("x", 2100) + `"}`), "STS allows 2048"},
		"policy field":   {tenantRole, awscreds.WithSessionPolicy(`{"x":"{{.Nope}}"}`), "WithSessionPolicy"},
		"max tenants":    {tenantRole, awscreds.WithMaxTenants(0), "WithMaxTenants"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := awscreds.New(client, tc.role, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestSessionNames(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	long := strings.Repeat("a", 100)
	for _, id := range []string{"acme", "acme corp", "ünïcode", long, long + "b"} {
		if _, err := p.Retrieve(ctxFor(t, id, "basic")); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, c := range srv.Calls() {
		n := c.RoleSessionName
		if len(n) < 2 || len(n) > 64 || strings.IndexFunc(n, func(r rune) bool {
			return !(r < 128 && (r == '_' || r == '+' || r == '=' || r == ',' || r == '.' || r == '@' || r == '-' ||
				'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'))
		}) >= 0 {
			t.Errorf("session name %q breaks STS's rules", n)
		}
		if seen[n] {
			t.Errorf("two tenants share the session name %q", n)
		}
		seen[n] = true
	}
	if !seen["tenant-acme"] {
		t.Errorf("names %v: a clean ID is used as it is", seen)
	}
}

// One DynamoDB client serves every tenant: each call is signed with the
// credentials of the tenant in its context.
func TestOneClientSignsPerTenant(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	var mu sync.Mutex
	keys := map[string]string{}
	ddb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		_, cred, _ := strings.Cut(auth, "Credential=")
		key, _, _ := strings.Cut(cred, "/")
		mu.Lock()
		keys[r.Header.Get("X-Test-Tenant")] = key
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Write([]byte(`{"TableNames":[]}`))
	}))
	defer ddb.Close()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	client := dynamodb.NewFromConfig(p.Config(aws.Config{Region: "eu-west-1", HTTPClient: hc}), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ddb.URL)
	})
	for _, id := range []string{"acme", "globex", "acme"} {
		_, err := client.ListTables(ctxFor(t, id, "basic"), &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) {
			o.APIOptions = append(o.APIOptions, addHeader("X-Test-Tenant", id))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if keys["acme"] == "" || keys["acme"] == keys["globex"] {
		t.Fatalf("signing keys by tenant %v: each tenant must sign with its own", keys)
	}
	if n := len(srv.Calls()); n != 2 {
		t.Fatalf("%d STS calls for two tenants", n)
	}
	if _, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{}); !errors.Is(err, awscreds.ErrNoTenant) {
		t.Fatalf("a call without a tenant: %v, want ErrNoTenant", err)
	}
}

func TestRetrievedCredentialsCannotBeReused(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	creds, err := p.Retrieve(ctxFor(t, "acme", "basic"))
	if err != nil {
		t.Fatal(err)
	}
	if !creds.CanExpire || time.Until(creds.Expires) > time.Second {
		t.Errorf("credentials say they last until %v: a cache around the provider could hand them to another tenant", creds.Expires)
	}
	if !aws.IsCredentialsProvider(p, (*aws.CredentialsCache)(nil)) {
		t.Error("the SDK would wrap the provider in a cache")
	}
}

func BenchmarkCachedCredentials(b *testing.B) {
	srv := ststest.Start(b)
	p := newProvider(b, srv)
	ctx := ctxFor(b, "acme", "premium")
	if _, err := p.Retrieve(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("Retrieve", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Retrieve(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	h := awscreds.Middleware(p, nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	b.Run("Middleware", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
}
