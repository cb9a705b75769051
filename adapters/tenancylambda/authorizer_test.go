package tenancylambda_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// seenTenant is what the handler behind tenant.Require answers.
type seenTenant struct {
	ID, Tier, Subject, Source string
	Roles, Scopes             []string
}

// trusting returns a Handler of a stack that trusts the authorizer, with a
// throttle of burst 2 (and a rate too low to refill during a test), around
// a handler that requires a verified tenant and answers it as JSON.
func trusting(t *testing.T) *tenancylambda.Handler {
	t.Helper()
	limits := map[string]throttle.Limits{}
	for _, name := range tenant.DefaultTiers.Names() {
		limits[name] = throttle.Limits{Rate: 0.001, Burst: 2}
	}
	limiter, err := throttle.New(tenant.DefaultTiers, limits)
	if err != nil {
		t.Fatal(err)
	}
	stack, err := tenancy.New(
		tenancy.WithResolver(tenancylambda.Authorizer(authz.Cognito(), nil, tenant.DefaultTiers.MustLookup("basic"))),
		tenancy.WithThrottle(limiter),
	)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", tenant.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn, _ := tenant.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seenTenant{ID: tn.ID, Tier: tn.Tier.String(), Subject: tn.Subject, Source: tn.Source.String(), Roles: tn.Roles, Scopes: tn.Scopes})
	})))
	return newHandler(t, stack.Wrap(mux))
}

func decodeTenant(t *testing.T, status int, body string) seenTenant {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d %s, want 200", status, body)
	}
	var st seenTenant
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAuthorizer: the tenant of what API Gateway's authorizer verified,
// from each kind of authorizer and payload version, with flattened arrays
// read back as lists; its source is peer, which tenant.Require and the
// throttle accept.
func TestAuthorizer(t *testing.T) {
	acme := seenTenant{
		ID: "acme", Tier: "premium", Subject: "7d8e1c2a-0f3b-4d5e-9a6b-1c2d3e4f5a6b", Source: "peer",
		Roles: []string{"admin", "ops"}, Scopes: []string{"notes/read", "notes/write"},
	}
	t.Run("v2 JWT authorizer", func(t *testing.T) {
		h := trusting(t)
		ev := loadV2(t, "http-jwt.json")
		res := invokeV2(t, context.Background(), h, ev)
		if diff := cmp.Diff(acme, decodeTenant(t, res.StatusCode, res.Body)); diff != "" {
			t.Errorf("tenant (-want +got):\n%s", diff)
		}
		// The throttle spends acme's budget: burst 2.
		invokeV2(t, context.Background(), h, ev)
		if res := invokeV2(t, context.Background(), h, ev); res.StatusCode != http.StatusTooManyRequests {
			t.Errorf("third request: %d, want 429 from acme's budget", res.StatusCode)
		}
	})
	t.Run("v2 Lambda authorizer", func(t *testing.T) {
		ev := loadV2(t, "http-jwt.json")
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			Lambda: map[string]any{"custom:tenantId": "acme", "custom:tenantTier": "standard", "sub": "u1", "cognito:groups": []any{"admin"}, "count": 3.0},
		}
		res := invokeV2(t, context.Background(), trusting(t), ev)
		want := seenTenant{ID: "acme", Tier: "standard", Subject: "u1", Source: "peer", Roles: []string{"admin"}}
		if diff := cmp.Diff(want, decodeTenant(t, res.StatusCode, res.Body)); diff != "" {
			t.Errorf("tenant (-want +got):\n%s", diff)
		}
	})
	t.Run("v1 Cognito authorizer", func(t *testing.T) {
		res := invokeV1(t, context.Background(), trusting(t), loadV1(t, "rest-cognito.json"))
		if diff := cmp.Diff(acme, decodeTenant(t, res.StatusCode, res.Body)); diff != "" {
			t.Errorf("tenant (-want +got):\n%s", diff)
		}
	})
	t.Run("v1 Lambda authorizer", func(t *testing.T) {
		ev := loadV1(t, "rest-cognito.json")
		ev.RequestContext.Authorizer = map[string]any{"principalId": "u2", "custom:tenantId": "globex", "integrationLatency": 12.0}
		res := invokeV1(t, context.Background(), trusting(t), ev)
		want := seenTenant{ID: "globex", Tier: "basic", Source: "peer"}
		if diff := cmp.Diff(want, decodeTenant(t, res.StatusCode, res.Body)); diff != "" {
			t.Errorf("tenant (-want +got):\n%s", diff)
		}
	})
	t.Run("v1 of an HTTP API with a JWT authorizer", func(t *testing.T) {
		ev := loadV1(t, "rest-cognito.json")
		ev.RequestContext.Authorizer = map[string]any{"jwt": map[string]any{"claims": map[string]any{"custom:tenantId": "acme", "cognito:groups": "[a, b]"}, "scopes": nil}}
		res := invokeV1(t, context.Background(), trusting(t), ev)
		want := seenTenant{ID: "acme", Tier: "basic", Source: "peer", Roles: []string{"a", "b"}}
		if diff := cmp.Diff(want, decodeTenant(t, res.StatusCode, res.Body)); diff != "" {
			t.Errorf("tenant (-want +got):\n%s", diff)
		}
	})
}

// TestAuthorizerRefusals: a request whose authorizer names no tenant is
// refused as one without a tenant (401); one that names an invalid tenant
// or tier with 400. A client cannot name one with a header.
func TestAuthorizerRefusals(t *testing.T) {
	claims := func(c map[string]string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
		return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: c}}
	}
	for _, tc := range []struct {
		name       string
		authorizer *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
		header     map[string]string
		status     int
		problem    string
	}{
		{"no authorizer", nil, nil, 401, "tenant-required"},
		{"no authorizer, tenant headers", nil, map[string]string{"x-tenant-id": "acme", "custom:tenantid": "acme"}, 401, "tenant-required"},
		{"IAM authorizer", &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{AccountID: "123456789012"}}, nil, 401, "tenant-required"},
		{"claims without the tenant claim", claims(map[string]string{"sub": "u1"}), nil, 401, "tenant-required"},
		{"invalid tenant ID", claims(map[string]string{"custom:tenantId": " acme"}), nil, 400, "invalid-tenant"},
		{"unknown tier", claims(map[string]string{"custom:tenantId": "acme", "custom:tenantTier": "gold"}), nil, 400, "invalid-tenant"},
		{"roles with a control character", claims(map[string]string{"custom:tenantId": "acme", "cognito:groups": "[admin\u202e ops]"}), nil, 400, "invalid-tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := loadV2(t, "http-jwt.json")
			ev.RequestContext.Authorizer = tc.authorizer
			for k, v := range tc.header {
				ev.Headers[k] = v
			}
			res := invokeV2(t, context.Background(), trusting(t), ev)
			if res.StatusCode != tc.status || res.Headers["Content-Type"] != "application/problem+json" || !strings.Contains(res.Body, "#"+tc.problem) {
				t.Errorf("%d %s %s, want %d problem %s", res.StatusCode, res.Headers["Content-Type"], res.Body, tc.status, tc.problem)
			}
		})
	}
}

// TestAuthorizerResolver: the resolver alone, on a request that did not
// come through a Handler, names no tenant.
func TestAuthorizerResolver(t *testing.T) {
	res := tenancylambda.Authorizer(authz.Cognito(), nil, tenant.Tier{})
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Tenant-Id", "acme")
	if tn, err := res.Resolve(r); err != tenant.ErrNoTenant {
		t.Errorf("Resolve = %v, %v; want tenant.ErrNoTenant", tn, err)
	}
	defer func() {
		if p := recover(); p == nil || !strings.HasPrefix(p.(string), "tenancylambda: ") {
			t.Errorf("Authorizer without a tenant claim: panic %v, want one prefixed tenancylambda:", p)
		}
	}()
	tenancylambda.Authorizer(authz.ClaimMapping{}, nil, tenant.Tier{})
}
