package awscreds_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
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
	"github.com/tenancykit/tenancy/internal/request/requesttest"
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

	// A nil option and a nil hook are ignored: the 503 is written all the same.
	h := awscreds.Middleware(p, nil, awscreds.WithOnError(nil))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
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

func TestSessionsAreBounded(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv, awscreds.WithMaxSessions(3))
	for i := range 10 {
		if _, err := p.Retrieve(ctxFor(t, "tenant-"+strconv.Itoa(i), "basic")); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Sessions(); n != 3 {
		t.Fatalf("%d sessions cached, want the cap of 3", n)
	}
}

// Per-user tags multiply sessions; the cap still bounds them, and the
// least recently used gives way.
func TestSessionsAreBoundedAcrossUsers(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv, awscreds.WithMaxSessions(2),
		awscreds.WithExtraTags(func(tn tenant.Tenant) map[string]string { return map[string]string{"User": tn.Subject} }))
	user := func(sub string) context.Context {
		return tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Subject: sub})
	}
	for _, sub := range []string{"ann", "bob", "ann", "cat", "ann"} { // bob is the least recently used when cat comes
		if _, err := p.Retrieve(user(sub)); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Sessions(); n != 2 {
		t.Fatalf("%d sessions cached, want the cap of 2", n)
	}
	if got := []int{srv.CallsFor("User", "ann"), srv.CallsFor("User", "bob"), srv.CallsFor("User", "cat")}; !slices.Equal(got, []int{1, 1, 1}) {
		t.Fatalf("STS calls for ann, bob, cat: %v; want one each", got)
	}
	if _, err := p.Retrieve(user("bob")); err != nil {
		t.Fatal(err)
	}
	if n := srv.CallsFor("User", "bob"); n != 2 {
		t.Errorf("bob, evicted, called STS %d times in all, want 2", n)
	}
	// bob took the place of cat, now the least recently used; ann, used
	// more recently, stays.
	if _, err := p.Retrieve(user("ann")); err != nil {
		t.Fatal(err)
	}
	if n := srv.CallsFor("User", "ann"); n != 1 {
		t.Errorf("ann, recently used, was evicted (%d STS calls)", n)
	}
}

// Two users of one tenant whose tags differ each get a session with their
// own tags; neither runs with the other's.
func TestSessionTagsArePerUser(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv,
		awscreds.WithTierTag("TenantTier"),
		awscreds.WithExtraTags(func(tn tenant.Tenant) map[string]string {
			if tn.HasRole("admin") {
				return map[string]string{"AppRole": "admin"}
			}
			return map[string]string{"AppRole": "member"}
		}))
	admin := tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Subject: "ann", Roles: []string{"admin"}}
	member := tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("basic"), Subject: "bob"}
	for range 3 {
		for _, tn := range []tenant.Tenant{admin, member} {
			if _, err := p.Retrieve(tenant.NewContext(context.Background(), tn)); err != nil {
				t.Fatal(err)
			}
		}
	}
	calls := srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d STS calls for two users, three requests each; want 2", len(calls))
	}
	want := []map[string]string{
		{"TenantId": "acme", "TenantTier": "premium", "AppRole": "admin"},
		{"TenantId": "acme", "TenantTier": "basic", "AppRole": "member"},
	}
	for i, c := range calls {
		if diff := cmp.Diff(want[i], c.Tags); diff != "" {
			t.Errorf("session %d tags (-want +got):\n%s", i, diff)
		}
	}
	if n := p.Sessions(); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
}

// Tags whose keys and values run into each other when written one after
// the other still make different sessions.
func TestSessionKeyTagsDoNotCollide(t *testing.T) {
	srv := ststest.Start(t)
	sets := map[string]map[string]string{
		"ann": {"a": "1", "b": "2"},
		"bob": {"a": "1b2"},
		"cat": {"a1": "b2"},
		"dan": {"a": "1:b=2"},
		"eve": {},
	}
	p := newProvider(t, srv, awscreds.WithExtraTags(func(tn tenant.Tenant) map[string]string { return sets[tn.Subject] }))
	for range 2 {
		for sub := range sets {
			if _, err := p.Retrieve(tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Subject: sub})); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(srv.Calls()); n != len(sets) {
		t.Errorf("%d STS calls for %d different tag sets, twice each", n, len(sets))
	}
}

// A tier change reaches STS at once: the tenant's next request gets a
// session with the new tier tag, and the policy rendered for the new tier.
func TestTierChangeGetsNewSession(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv, awscreds.WithTierTag("TenantTier"),
		awscreds.WithSessionPolicy(`{"Version":"2012-10-17","Statement":[{"Sid":{{json .Tier}},"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}`))
	for _, tier := range []string{"premium", "premium", "basic", "basic", "premium"} {
		if _, err := p.Retrieve(ctxFor(t, "acme", tier)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, c := range srv.Calls() {
		got = append(got, c.Tags["TenantTier"])
		if !strings.Contains(c.Policy, `"Sid":"`+c.Tags["TenantTier"]+`"`) {
			t.Errorf("policy %s not rendered for tier %s", c.Policy, c.Tags["TenantTier"])
		}
	}
	// The premium session is still cached when the tenant moves back.
	if diff := cmp.Diff([]string{"premium", "basic"}, got); diff != "" {
		t.Errorf("sessions' tier tags (-want +got):\n%s", diff)
	}
}

// Where the tier reaches nothing STS sees, a tier change does not cost a
// session.
func TestTierNotInSessionSharesIt(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	for _, tier := range []string{"premium", "basic"} {
		if _, err := p.Retrieve(ctxFor(t, "acme", tier)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Calls()); n != 1 {
		t.Errorf("%d STS calls, want 1", n)
	}
}

// Extra tags are checked when a session is made; one STS would refuse is
// never cached.
func TestExtraTagsRefusedAreNotCached(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv, awscreds.WithExtraTags(func(tn tenant.Tenant) map[string]string {
		return map[string]string{"TenantId": "other"}
	}))
	for range 2 {
		if _, err := p.Retrieve(ctxFor(t, "acme", "basic")); err == nil || !strings.Contains(err.Error(), "collides") {
			t.Fatalf("Retrieve = %v, want a collision", err)
		}
	}
	if n, c := p.Sessions(), len(srv.Calls()); n != 0 || c != 0 {
		t.Errorf("%d sessions cached and %d STS calls for a refused one", n, c)
	}
}

// A tenant that the request claimed for itself (its Host, its path) gets no
// credentials, unless the Provider allows claimed tenants.
func TestClaimedTenantRefused(t *testing.T) {
	srv := ststest.Start(t)
	claimed := tenant.NewContext(context.Background(), tenant.Tenant{ID: "victim", Source: tenant.SourceClaimed})
	_, err := newProvider(t, srv).Retrieve(claimed)
	if !errors.Is(err, tenant.ErrNoTenant) || !strings.Contains(err.Error(), "the tenant was claimed by the request, not verified") ||
		!strings.Contains(err.Error(), "WithClaimedTenants") {
		t.Fatalf("Retrieve for a claimed tenant = %v, want tenant.ErrNoTenant saying it was claimed and naming WithClaimedTenants", err)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Fatalf("%d STS calls for a claimed tenant", n)
	}
	for _, src := range []tenant.Source{tenant.SourceAssigned, tenant.SourceToken, tenant.SourcePeer} {
		if _, err := newProvider(t, srv).Retrieve(tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Source: src})); err != nil {
			t.Errorf("%v tenant: %v", src, err)
		}
	}
	if _, err := newProvider(t, srv, awscreds.WithClaimedTenants()).Retrieve(claimed); err != nil {
		t.Fatalf("with WithClaimedTenants: %v", err)
	}
	if n := srv.CallsFor("TenantId", "victim"); n != 1 {
		t.Errorf("%d STS calls for the claimed tenant allowed", n)
	}
}

// The middleware answers a request without a tenant, or with a claimed
// one, as tenant.Require does: 401, a Bearer challenge, tenant-required.
// No retry helps, so there is no Retry-After.
func TestMiddlewareTenantRequired(t *testing.T) {
	srv := ststest.Start(t)
	var errs []error
	h := func(p *awscreds.Provider) http.Handler {
		return awscreds.Middleware(p, awscreds.WithOnError(func(r *http.Request, err error) { errs = append(errs, err) }))(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	}
	claimed := tenant.Tenant{ID: "victim", Source: tenant.SourceClaimed}
	serve := func(h http.Handler, tn *tenant.Tenant) (*httptest.ResponseRecorder, tenant.Rejection) {
		ctx := context.Background()
		if tn != nil {
			ctx = tenant.NewContext(ctx, *tn)
		}
		w := httptest.NewRecorder()
		ww, req, rec := requesttest.Start(w, httptest.NewRequest("GET", "/orders", nil).WithContext(ctx))
		h.ServeHTTP(ww, req)
		return w, rec.Rejection()
	}
	for name, tn := range map[string]*tenant.Tenant{"no tenant": nil, "claimed tenant": &claimed} {
		t.Run(name, func(t *testing.T) {
			w, rej := serve(h(newProvider(t, srv)), tn)
			var p tenant.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			want := tenant.Problem{Type: tenant.ProblemType("tenant-required"), Title: "Tenant required", Status: 401, Detail: p.Detail}
			if w.Code != 401 || p != want || p.Detail == "" {
				t.Errorf("%d %+v, want 401 %+v", w.Code, p, want)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if got := w.Header().Get("Retry-After"); got != "" {
				t.Errorf("Retry-After %q for a request no retry can help", got)
			}
			if want := (tenant.Rejection{By: "awscreds", Reason: "tenant_required", Status: 401}); rej != want {
				t.Errorf("rejection %+v, want %+v", rej, want)
			}
		})
	}
	if len(errs) != 0 {
		t.Errorf("onError heard of a missing tenant: %v", errs)
	}
	if w, _ := serve(h(newProvider(t, srv, awscreds.WithClaimedTenants())), &claimed); w.Code != 204 {
		t.Errorf("claimed tenant with WithClaimedTenants: %d", w.Code)
	}
	srv.Fail("", "RegionDisabledException")
	acme := tenant.Tenant{ID: "acme"}
	w, rej := serve(h(newProvider(t, srv)), &acme)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || rej != (tenant.Rejection{By: "awscreds", Reason: "credentials", Status: 503}) || len(errs) != 1 {
		t.Errorf("STS down: %d, Retry-After %q, rejection %+v, onError %v; want 503 with Retry-After, heard once", w.Code, w.Header().Get("Retry-After"), rej, errs)
	}
}

func TestRetrieveRefusals(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv)
	// One error for a missing tenant across the module: tenant's, with
	// this package's name in the text.
	_, err := p.Retrieve(context.Background())
	if !errors.Is(err, tenant.ErrNoTenant) || err.Error() != "awscreds: no tenant in context" {
		t.Errorf("no tenant: %v, want tenant.ErrNoTenant as \"awscreds: no tenant in context\"", err)
	}
	if _, err := p.Retrieve(tenant.NewContext(context.Background(), tenant.Tenant{})); !errors.Is(err, tenant.ErrNoTenant) {
		t.Errorf("a tenant without an ID: %v, want tenant.ErrNoTenant", err)
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
		"role ARN":        {"orders-tenant", nil, "not an IAM role ARN"},
		"short duration":  {tenantRole, awscreds.WithDuration(10 * time.Minute), "15m to 12h"},
		"long duration":   {tenantRole, awscreds.WithDuration(13 * time.Hour), "15m to 12h"},
		"window":          {tenantRole, awscreds.WithExpiryWindow(2 * time.Hour), "shorter than the duration"},
		"reserved key":    {tenantRole, awscreds.WithTagKey("aws:tenant"), "reserved"},
		"tier is tenant":  {tenantRole, awscreds.WithTierTag("tenantid"), "also the tenant tag key"},
		"key chars":       {tenantRole, awscreds.WithTagKey("Tenant#Id"), "character STS does not allow"},
		"prefix":          {tenantRole, awscreds.WithSessionPrefix("tenant/"), "WithSessionPrefix"},
		"policy JSON":     {tenantRole, awscreds.WithSessionPolicy(`{"Version": {{.TenantID}}`), "not JSON"},
		"policy size":     {tenantRole, awscreds.WithSessionPolicy(`{"Sid":"` + strings.Repeat("x", 2100) + `"}`), "STS allows 2048"},
		"policy field":    {tenantRole, awscreds.WithSessionPolicy(`{"x":"{{.Nope}}"}`), "WithSessionPolicy"},
		"max sessions":    {tenantRole, awscreds.WithMaxSessions(-1), "WithMaxSessions"},
		"negative window": {tenantRole, awscreds.WithExpiryWindow(-time.Minute), "WithExpiryWindow"},
		"transitive key":  {tenantRole, awscreds.WithTransitiveTags("TenantId", "aws:chain"), "WithTransitiveTags"},
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
	if _, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{}); !errors.Is(err, tenant.ErrNoTenant) {
		t.Fatalf("a call without a tenant: %v, want tenant.ErrNoTenant", err)
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
	h := awscreds.Middleware(p)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	b.Run("Middleware", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
	// With the tier and a tag from the user's roles in the session: the
	// key also covers them.
	tagged := newProvider(b, srv, awscreds.WithTierTag("TenantTier"), awscreds.WithExtraTags(func(tn tenant.Tenant) map[string]string {
		if tn.HasRole("admin") {
			return map[string]string{"AppRole": "admin"}
		}
		return map[string]string{"AppRole": "member"}
	}))
	admin := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Roles: []string{"admin"}})
	if _, err := tagged.Retrieve(admin); err != nil {
		b.Fatal(err)
	}
	b.Run("RetrieveWithExtraTags", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tagged.Retrieve(admin); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// WithTransitiveTags sends its keys in AssumeRole's TransitiveTagKeys, as
// given, calls of the option adding up; without it none are sent.
func TestTransitiveTags(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv, awscreds.WithTierTag("TenantTier"),
		awscreds.WithTransitiveTags("TenantId"), awscreds.WithTransitiveTags("TenantTier"))
	if _, err := p.Retrieve(ctxFor(t, "acme", "premium")); err != nil {
		t.Fatal(err)
	}
	if _, err := newProvider(t, srv).Retrieve(ctxFor(t, "globex", "basic")); err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d STS calls, want 2", len(calls))
	}
	if diff := cmp.Diff([]string{"TenantId", "TenantTier"}, calls[0].TransitiveTags); diff != "" {
		t.Errorf("transitive tag keys (-want +got):\n%s", diff)
	}
	if want := map[string]string{"TenantId": "acme", "TenantTier": "premium"}; !cmp.Equal(want, calls[0].Tags) {
		t.Errorf("tags %v, want %v", calls[0].Tags, want)
	}
	if len(calls[1].TransitiveTags) != 0 {
		t.Errorf("transitive tag keys %q without WithTransitiveTags", calls[1].TransitiveTags)
	}
}

// WithClock is the time Retrieve's credentials say they expire at, so no
// cache wrapped around the Provider keeps them; nil is time.Now.
func TestClockSetsExpiry(t *testing.T) {
	srv := ststest.Start(t)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	creds, err := newProvider(t, srv, awscreds.WithClock(func() time.Time { return at })).Retrieve(ctxFor(t, "acme", "basic"))
	if err != nil {
		t.Fatal(err)
	}
	if !creds.CanExpire || !creds.Expires.Equal(at) {
		t.Errorf("credentials expire at %v (can expire: %v), want the clock's %v", creds.Expires, creds.CanExpire, at)
	}
	before := time.Now()
	creds, err = newProvider(t, srv, awscreds.WithClock(nil)).Retrieve(ctxFor(t, "acme", "basic"))
	if err != nil {
		t.Fatal(err)
	}
	if creds.Expires.Before(before) || time.Since(creds.Expires) > time.Minute {
		t.Errorf("with WithClock(nil), credentials expire at %v, want about now (%v)", creds.Expires, before)
	}
}

// An option given its zero value leaves its default in place: the call to
// STS is the one a Provider without options makes.
func TestZeroOptionsMeanDefault(t *testing.T) {
	srv := ststest.Start(t)
	p := newProvider(t, srv, nil,
		awscreds.WithTagKey(""), awscreds.WithTierTag(""), awscreds.WithExtraTags(nil), awscreds.WithTransitiveTags(),
		awscreds.WithSessionPolicy(""), awscreds.WithDuration(0), awscreds.WithExpiryWindow(0),
		awscreds.WithSessionPrefix(""), awscreds.WithMaxSessions(0), awscreds.WithClock(nil))
	if _, err := p.Retrieve(ctxFor(t, "acme", "premium")); err != nil {
		t.Fatal(err)
	}
	if _, err := newProvider(t, srv).Retrieve(ctxFor(t, "globex", "premium")); err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d STS calls, want 2", len(calls))
	}
	zero, none := calls[0], calls[1]
	none.RoleSessionName, none.Tags = "tenant-acme", map[string]string{awscreds.DefaultTagKey: "acme"}
	if diff := cmp.Diff(none, zero); diff != "" {
		t.Errorf("AssumeRole with zero options differs from the defaults' (-defaults +zero):\n%s", diff)
	}
	if zero.DurationSeconds != int(awscreds.DefaultDuration/time.Second) {
		t.Errorf("duration %ds, want DefaultDuration", zero.DurationSeconds)
	}
}
