package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// output is the function's stdout, safe to read while it writes.
type output struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// lines decodes the JSON lines written so far.
func (o *output) lines(t *testing.T) []map[string]any {
	t.Helper()
	o.mu.Lock()
	s := o.buf.String()
	o.mu.Unlock()
	return jsonLines(t, s)
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// accessLines are the access log's lines among lines.
func accessLines(lines []map[string]any) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if _, ok := l["status"]; ok && l["route"] != nil {
			out = append(out, l)
		}
	}
	return out
}

// requests sums the http.requests usage records of tenantID in lines.
func requests(lines []map[string]any, tenantID string) float64 {
	var n float64
	for _, l := range lines {
		if l["meter"] == "http.requests" && l["tenant_id"] == tenantID {
			n += l["value"].(float64)
		}
	}
	return n
}

// start builds the service of env, closed when the test ends, and its
// stdout.
func start(t *testing.T, env map[string]string, opts ...serviceOption) (*service, *output) {
	t.Helper()
	out := &output{}
	svc, err := newService(context.Background(), func(k string) string { return env[k] }, out, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return svc, out
}

var trusted = map[string]string{"TRUST_AUTHORIZER": "1"}

func loadV1(t *testing.T, name string) events.APIGatewayProxyRequest {
	t.Helper()
	var ev events.APIGatewayProxyRequest
	load(t, name, &ev)
	return ev
}

func loadV2(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	load(t, name, &ev)
	return ev
}

func load(t *testing.T, name string, ev any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// asTenant returns ev with its JWT authorizer naming tenantID.
func asTenant(ev events.APIGatewayV2HTTPRequest, tenantID string) events.APIGatewayV2HTTPRequest {
	claims := map[string]string{}
	for k, v := range ev.RequestContext.Authorizer.JWT.Claims {
		claims[k] = v
	}
	claims["custom:tenantId"] = tenantID
	jwt := *ev.RequestContext.Authorizer.JWT
	jwt.Claims = claims
	ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &jwt}
	return ev
}

// withToken returns ev without an authorizer, with token as its bearer
// token: an event of an API without authorizer, for a function that
// verifies tokens itself.
func withToken(ev events.APIGatewayV2HTTPRequest, token string) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	for k, v := range ev.Headers {
		headers[k] = v
	}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	ev.Headers, ev.RequestContext.Authorizer = headers, nil
	return ev
}

func invokeV2(t *testing.T, svc *service, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var res events.APIGatewayV2HTTPResponse
	invoke(t, svc, ev, &res)
	return res
}

func invokeV1(t *testing.T, svc *service, ev events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	var res events.APIGatewayProxyResponse
	invoke(t, svc, ev, &res)
	return res
}

func invoke(t *testing.T, svc *service, ev, res any) {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	out, err := svc.handler.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if err := json.Unmarshal(out, res); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
}

// noteIDs decodes a GET /notes response into the notes' IDs.
func noteIDs(t *testing.T, res events.APIGatewayV2HTTPResponse) []string {
	t.Helper()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /notes: %d %s", res.StatusCode, res.Body)
	}
	var list []note
	if err := json.Unmarshal([]byte(res.Body), &list); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, n := range list {
		ids = append(ids, n.ID)
	}
	return ids
}

// TestTrustedAuthorizer: with TRUST_AUTHORIZER=1 the tenant comes from
// the HTTP API's JWT authorizer claims; each tenant sees only its notes.
func TestTrustedAuthorizer(t *testing.T) {
	svc, _ := start(t, trusted)
	post, get := loadV2(t, "http-post-note.json"), loadV2(t, "http-get-notes.json")

	res := invokeV2(t, svc, post)
	if res.StatusCode != http.StatusCreated || res.Headers["Location"] != "/notes/n1" {
		t.Fatalf("POST /notes as acme: %d %v %s", res.StatusCode, res.Headers, res.Body)
	}
	if got := noteIDs(t, invokeV2(t, svc, get)); !cmp.Equal(got, []string{"n1"}) {
		t.Errorf("acme's notes %v, want [n1]", got)
	}
	if got := noteIDs(t, invokeV2(t, svc, asTenant(get, "globex"))); len(got) != 0 {
		t.Errorf("globex sees notes %v of acme", got)
	}
	invokeV2(t, svc, asTenant(post, "globex"))
	if got := noteIDs(t, invokeV2(t, svc, asTenant(get, "globex"))); !cmp.Equal(got, []string{"n1"}) {
		t.Errorf("globex's notes %v, want its own n1", got)
	}
}

// recordingTransport notes the path of every request the verifier
// makes.
type recordingTransport struct {
	mu    sync.Mutex
	paths []string
	next  *http.Transport
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.paths = append(rt.paths, r.URL.Path)
	rt.mu.Unlock()
	return rt.next.RoundTrip(r)
}

func (rt *recordingTransport) fetched() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.paths...)
}

// reverifying starts an issuer and the service that verifies its tokens,
// with JWKS_URL unless discovery, and the transport its verifier fetches
// through.
func reverifying(t *testing.T, discovery bool) (*authztest.Issuer, *service, *output, *recordingTransport) {
	t.Helper()
	iss := authztest.Start(t)
	rt := &recordingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(rt.next.CloseIdleConnections)
	env := map[string]string{"ISSUER": iss.URL(), "AUDIENCE": iss.Audience()}
	if !discovery {
		env["JWKS_URL"] = iss.JWKSURL()
	}
	svc, out := start(t, env, withHTTPClient(&http.Client{Transport: rt}))
	return iss, svc, out, rt
}

// TestReverify: without TRUST_AUTHORIZER the function verifies the bearer
// token itself. With JWKS_URL its cold start fetches the JWK Set once and
// no discovery document; later invocations fetch nothing.
func TestReverify(t *testing.T) {
	iss, svc, _, rt := reverifying(t, false)
	if got, want := rt.fetched(), []string{"/.well-known/jwks.json"}; !cmp.Equal(got, want) {
		t.Errorf("cold start fetched %v, want only %v", got, want)
	}
	if n := iss.JWKSFetches(); n != 1 {
		t.Errorf("%d JWK Set fetches at cold start, want 1", n)
	}

	acme, globex := iss.MustMint("acme", "premium"), iss.MustMint("globex", "basic")
	post, get := loadV2(t, "http-post-note.json"), loadV2(t, "http-get-notes.json")
	if res := invokeV2(t, svc, withToken(post, acme)); res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /notes with acme's token: %d %s", res.StatusCode, res.Body)
	}
	if got := noteIDs(t, invokeV2(t, svc, withToken(get, acme))); !cmp.Equal(got, []string{"n1"}) {
		t.Errorf("acme's notes %v, want [n1]", got)
	}
	if got := noteIDs(t, invokeV2(t, svc, withToken(get, globex))); len(got) != 0 {
		t.Errorf("globex sees notes %v of acme", got)
	}
	if got := rt.fetched(); len(got) != 1 || iss.JWKSFetches() != 1 {
		t.Errorf("after three invocations: fetched %v, %d JWK Set fetches; want nothing after cold start", got, iss.JWKSFetches())
	}

	t.Run("without JWKS_URL", func(t *testing.T) {
		_, _, _, rt := reverifying(t, true)
		want := []string{"/.well-known/openid-configuration", "/.well-known/jwks.json"}
		if got := rt.fetched(); !cmp.Equal(got, want) {
			t.Errorf("cold start with discovery fetched %v, want %v", got, want)
		}
	})
}

// TestAccessLines: the access line of each invocation carries API
// Gateway's request ID and the X-Ray trace ID of its header, in W3C form,
// with the tenant.
func TestAccessLines(t *testing.T) {
	t.Run("REST API", func(t *testing.T) {
		svc, out := start(t, trusted)
		invokeV1(t, svc, loadV1(t, "rest-post-note.json"))
		checkAccessLine(t, out, "5a0c2f9e-1b7d-4e8a-9c3f-2d6b8e0a4c1f", "6780a1b40123456789abcdef01234567", 201)
	})
	t.Run("HTTP API", func(t *testing.T) {
		svc, out := start(t, trusted)
		invokeV2(t, svc, loadV2(t, "http-post-note.json"))
		checkAccessLine(t, out, "", "6780a1b23c4d5e6f708192a3b4c5d6e7", 201)
		const requestID = "Qm3xHgKLoAMEbzw=" // HTTP API request IDs end in "="
		checkAccessLine(t, out, requestID, "6780a1b23c4d5e6f708192a3b4c5d6e7", 201)
	})
}

// checkAccessLine checks the one access line on out; requestID "" is not
// checked.
func checkAccessLine(t *testing.T, out *output, requestID, traceID string, status float64) {
	t.Helper()
	lines := accessLines(out.lines(t))
	if len(lines) != 1 {
		t.Fatalf("access lines %v, want one", lines)
	}
	l := lines[0]
	if requestID != "" && l["request_id"] != requestID {
		t.Errorf("request_id %v, want %s", l["request_id"], requestID)
	}
	if l["trace_id"] != traceID || l["status"] != status || l["tenant_id"] != "acme" || l["route"] != "POST /notes" {
		t.Errorf("access line %v, want trace_id %s, status %v, tenant acme, route POST /notes", l, traceID, status)
	}
}

// TestUsageDelivered: each invocation's usage is delivered before it
// returns, the open window's included: after the nth, the tenant's
// requests add up to n, with no Shutdown; on stdout, or in METER_FILE.
func TestUsageDelivered(t *testing.T) {
	get := loadV2(t, "http-get-notes.json")
	t.Run("stdout", func(t *testing.T) {
		svc, out := start(t, trusted)
		for n := 1; n <= 3; n++ {
			invokeV2(t, svc, get)
			if got := requests(out.lines(t), "acme"); got != float64(n) {
				t.Fatalf("after invocation %d: %v requests of acme on stdout, want %d", n, got, n)
			}
		}
	})
	t.Run("METER_FILE", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "usage.jsonl")
		svc, _ := start(t, map[string]string{"TRUST_AUTHORIZER": "1", "METER_FILE": file})
		for n := 1; n <= 3; n++ {
			invokeV2(t, svc, asTenant(get, "globex"))
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if got := requests(jsonLines(t, string(b)), "globex"); got != float64(n) {
				t.Fatalf("after invocation %d: %v requests of globex in METER_FILE, want %d", n, got, n)
			}
		}
	})
}

// TestRefused: a request without a tenant, or with a bad token, is
// answered 401 with a problem document, in the event's response.
func TestRefused(t *testing.T) {
	get := loadV2(t, "http-get-notes.json")
	check := func(t *testing.T, res events.APIGatewayV2HTTPResponse, problem string) {
		t.Helper()
		var p struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
		}
		json.Unmarshal([]byte(res.Body), &p)
		if res.StatusCode != http.StatusUnauthorized || res.Headers["Content-Type"] != "application/problem+json" ||
			p.Status != 401 || !strings.HasSuffix(p.Type, "#"+problem) || !strings.HasPrefix(res.Headers["Www-Authenticate"], "Bearer") {
			t.Errorf("response %d %v %s, want 401 problem %s with a Bearer challenge", res.StatusCode, res.Headers, res.Body, problem)
		}
	}
	t.Run("trusted, no authorizer", func(t *testing.T) {
		svc, _ := start(t, trusted)
		check(t, invokeV2(t, svc, withToken(get, "")), "tenant-required")
	})
	t.Run("trusted, a tenant header is not a tenant", func(t *testing.T) {
		svc, _ := start(t, trusted)
		ev := withToken(get, "")
		ev.Headers["x-tenant-id"] = "acme"
		check(t, invokeV2(t, svc, ev), "tenant-required")
	})
	iss, svc, _, _ := reverifying(t, false)
	t.Run("verifying, no token", func(t *testing.T) {
		check(t, invokeV2(t, svc, withToken(get, "")), "unauthorized")
	})
	t.Run("verifying, expired token", func(t *testing.T) {
		check(t, invokeV2(t, svc, withToken(get, iss.MustMint("acme", "basic", authztest.WithExpiry(-time.Hour)))), "unauthorized")
	})
	t.Run("verifying, another issuer's token", func(t *testing.T) {
		other := authztest.Start(t)
		check(t, invokeV2(t, svc, withToken(get, other.MustMint("acme", "basic"))), "unauthorized")
	})
	t.Run("verifying, authorizer claims without a token", func(t *testing.T) {
		check(t, invokeV2(t, svc, get), "unauthorized")
	})
}

// TestRESTRoundTrip: a REST API event's multi-value headers and base64
// body reach the service whole, and come back whole: a binary note posted
// with two tags is read back as the same base64, with both tags.
func TestRESTRoundTrip(t *testing.T) {
	svc, _ := start(t, trusted)
	post := loadV1(t, "rest-post-note.json")
	res := invokeV1(t, svc, post)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.StatusCode, res.Body)
	}
	var created note
	if err := json.Unmarshal([]byte(res.Body), &created); err != nil {
		t.Fatal(err)
	}
	content, err := base64.StdEncoding.DecodeString(post.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := note{ID: "n1", ContentType: "application/octet-stream", Size: len(content), Tags: []string{"work", "urgent"}}
	if diff := cmp.Diff(want, created, cmp.AllowUnexported(note{})); diff != "" {
		t.Errorf("created note (-want +got):\n%s", diff)
	}

	got := invokeV1(t, svc, loadV1(t, "rest-get-note.json"))
	if got.StatusCode != http.StatusOK || !got.IsBase64Encoded || got.Body != post.Body {
		t.Errorf("GET: %d base64 %v body %q, want 200 and the posted base64 %q", got.StatusCode, got.IsBase64Encoded, got.Body, post.Body)
	}
	if diff := cmp.Diff([]string{"work", "urgent"}, got.MultiValueHeaders["X-Note-Tag"]); diff != "" {
		t.Errorf("X-Note-Tag (-want +got):\n%s", diff)
	}
	if ct := got.MultiValueHeaders["Content-Type"]; !cmp.Equal(ct, []string{"application/octet-stream"}) {
		t.Errorf("Content-Type %v", ct)
	}
}

// TestConfig: a mistake in the environment is an error naming the
// variable to fix.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TRUST_AUTHORIZER": "yes"}, "TRUST_AUTHORIZER"},
		{map[string]string{}, "ISSUER and AUDIENCE"},
		{map[string]string{"ISSUER": "https://issuer.example"}, "ISSUER and AUDIENCE"},
		{map[string]string{"TRUST_AUTHORIZER": "1", "METER_FILE": filepath.Join(t.TempDir(), "no", "such", "dir")}, "METER_FILE"},
	} {
		_, err := newService(context.Background(), func(k string) string { return tc.env[k] }, &output{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v: %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
}
