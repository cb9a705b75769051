package authz_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/tenant"
)

func TestSmoke(t *testing.T) {
	iss := authztest.Start(t)
	v := iss.Verifier(t)
	tok := iss.MustMint("acme", "premium", authztest.WithRoles("admin"), authztest.WithScopes("orders:read"))
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "acme" || got.Tier.Name() != "premium" || !got.HasRole("admin") || !got.HasScope("orders:read") {
		t.Fatalf("got %+v", got)
	}
	h := authz.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn, _ := tenant.FromContext(r.Context())
		w.Write([]byte(tn.ID))
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "bearer "+tok)
	h.ServeHTTP(rec, req)
	if rec.Body.String() != "acme" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok+"x")
	h.ServeHTTP(rec, req)
	t.Log(rec.Code, rec.Header(), rec.Body)
}
