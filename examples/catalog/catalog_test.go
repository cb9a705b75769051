package main

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// service is the catalog running in this process, reached over real HTTP
// on a loopback port.
type service struct{ *servicetest.Service }

type (
	response = servicetest.Response
	logLine  = servicetest.LogLine
)

// startService runs the catalog with env as its environment until the test
// ends, and checks then that it stopped cleanly.
func startService(t *testing.T, env map[string]string, opts ...runOption) *service {
	t.Helper()
	return &service{servicetest.Start(t, env, catalog(opts...))}
}

// catalog is run with the test's hooks, for servicetest.Start.
func catalog(opts ...runOption) servicetest.Run {
	return func(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(string)) error {
		return run(ctx, []string{"catalog"}, getenv, stdout, stderr, append(slices.Clip(opts), withReady(ready))...)
	}
}

// startIssuer starts an issuer of tokens for the audience catalog-test.
func startIssuer(t *testing.T) *authztest.Issuer {
	t.Helper()
	return authztest.Start(t, authztest.WithAudience("catalog-test"))
}

// startForIssuer starts the catalog verifying the tokens of iss, with env
// added to its environment.
func startForIssuer(t *testing.T, iss *authztest.Issuer, env map[string]string, opts ...runOption) *service {
	t.Helper()
	return startService(t, servicetest.IssuerEnv(iss, env), opts...)
}

// get sends GET path with token (none when empty) and the extra headers,
// and returns the whole response.
func (s *service) get(t *testing.T, path, token string, header http.Header) response {
	t.Helper()
	return s.Do(t, http.MethodGet, path, token, "", header)
}

// decodeProduct checks that r is a 200 with exactly the documented fields
// and returns the product.
func decodeProduct(t *testing.T, r response) product {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &fields); err != nil {
		t.Fatalf("product: %v in %s", err, r.Body)
	}
	if diff := cmp.Diff([]string{"item", "tenant_id", "unit_price_cents"}, slices.Sorted(maps.Keys(fields))); diff != "" {
		t.Fatalf("product fields (-want +got):\n%s", diff)
	}
	var p product
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("product: %v in %s", err, r.Body)
	}
	return p
}

// syncBuffer collects output written while the test reads it.
type syncBuffer = syncbuf.Buffer
