package tenancylambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"

	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
)

// FuzzInvoke: whatever the payload, Invoke never panics, and either fails
// with ErrUnknownEvent or answers a response with a status.
func FuzzInvoke(f *testing.F) {
	for _, name := range []string{"rest-cognito.json", "http-jwt.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":"2.0","rawPath":"/%zz?#","rawQueryString":"a=%","headers":{"x-amzn-trace-id":"Root=1-"},"body":"!!","isBase64Encoded":true}`))
	f.Add([]byte(`{"httpMethod":"get","path":"","requestContext":{"authorizer":{"claims":{"custom:tenantId":"[a b]"}}}}`))
	// Bodies that are not base64 are logged: not here.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	f.Cleanup(func() { slog.SetDefault(prev) })
	resolver := tenancylambda.Authorizer(authz.Cognito(), nil, tenant.Tier{})
	h, err := tenancylambda.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resolver.Resolve(r)
		io.Copy(w, r.Body)
		r.URL.Query()
		r.Cookies()
	}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := h.Invoke(context.Background(), payload)
		if err != nil {
			if !errors.Is(err, tenancylambda.ErrUnknownEvent) {
				t.Fatalf("error %v does not wrap ErrUnknownEvent", err)
			}
			return
		}
		var res struct {
			StatusCode int `json:"statusCode"`
		}
		if err := json.Unmarshal(out, &res); err != nil || res.StatusCode < 200 {
			t.Fatalf("response %s: %v", out, err)
		}
	})
}
