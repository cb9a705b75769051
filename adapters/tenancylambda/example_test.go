package tenancylambda_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
)

// An HTTP API event with the claims of a JWT authorizer, served by a
// stack that trusts the authorizer. A function gives the Handler to
// lambda.Start instead of calling Invoke.
func Example() {
	mux := http.NewServeMux()
	mux.Handle("GET /notes", tenant.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := tenant.FromContext(r.Context())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "notes of %s (%s), roles %v, source %s\n", t.ID, t.Tier, t.Roles, t.Source)
	})))
	stack, err := tenancy.New(tenancy.WithResolver(tenancylambda.Authorizer(authz.Cognito(), nil, tenant.Tier{})))
	if err != nil {
		panic(err)
	}
	h, err := tenancylambda.New(stack.Wrap(mux))
	if err != nil {
		panic(err)
	}
	// lambda.Start(h)

	out, err := h.Invoke(context.Background(), []byte(`{
		"version": "2.0",
		"rawPath": "/notes",
		"requestContext": {
			"http": {"method": "GET", "sourceIp": "203.0.113.7"},
			"requestId": "LV7fzho-PHcEJPw=",
			"authorizer": {"jwt": {"claims": {
				"custom:tenantId": "acme",
				"custom:tenantTier": "premium",
				"cognito:groups": "[admin ops]"
			}}}
		}
	}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	// Output:
	// {"statusCode":200,"headers":{"Content-Type":"text/plain; charset=utf-8"},"multiValueHeaders":null,"body":"notes of acme (premium), roles [admin ops], source peer\n","cookies":null}
}
