package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/internal/testservers"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	servicetest.RunChild(main) // when a test started this binary as the service
	goleak.VerifyTestMain(m)
}

// service is the orders service running in this process, reached over real
// HTTP on a loopback port.
type service struct{ *servicetest.Service }

type response = servicetest.Response

// startService runs the service with env as its environment until the test
// ends, and checks then that it stopped cleanly.
func startService(t *testing.T, env map[string]string, opts ...runOption) *service {
	t.Helper()
	return &service{servicetest.Start(t, env, orders(opts...))}
}

// orders is run with the test's hooks, for servicetest.Start.
func orders(opts ...runOption) servicetest.Run {
	return func(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready func(string)) error {
		return run(ctx, []string{"orders"}, getenv, stdout, stderr, append(slices.Clip(opts), withReady(ready))...)
	}
}

// startWithIssuer starts an issuer and the service in production mode,
// configured for that issuer through the environment.
func startWithIssuer(t *testing.T, opts ...runOption) (*service, *authztest.Issuer) {
	t.Helper()
	iss := startIssuer(t)
	return startForIssuer(t, iss, nil, opts...), iss
}

// storeKinds are the stores the service can keep orders in, with the
// environment that selects each: the tests of isolation run on both.
var storeKinds = []struct {
	name string
	env  func(t *testing.T) map[string]string
}{
	{"memory", func(*testing.T) map[string]string { return nil }},
	{"dynamodb", dynamoEnv},
}

// dynamoEnv starts a dynalite for the test (or skips it, naming what to
// install) and returns the environment that keeps orders there.
func dynamoEnv(t *testing.T) map[string]string {
	d := testservers.Dynalite(t)
	return map[string]string{"DYNAMODB_ENDPOINT": d.Endpoint, "ORDERS_TABLE": "orders_test"}
}

// forEachStore runs f as a subtest for each store kind, with the
// environment that selects it.
func forEachStore(t *testing.T, f func(t *testing.T, env map[string]string)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { f(t, k.env(t)) })
	}
}

// startIssuer starts an issuer of tokens for the audience orders-test.
func startIssuer(t *testing.T) *authztest.Issuer {
	t.Helper()
	return authztest.Start(t, authztest.WithAudience("orders-test"))
}

// startForIssuer starts the service in production mode, verifying the
// tokens of iss, with env added to its environment.
func startForIssuer(t *testing.T, iss *authztest.Issuer, env map[string]string, opts ...runOption) *service {
	t.Helper()
	return startService(t, servicetest.IssuerEnv(iss, env), opts...)
}

// mapWith returns a copy of m with key set to value.
func mapWith(m map[string]string, key, value string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[key] = value
	return out
}

// do sends a request with token (none when empty) and body (none when
// empty) and returns the whole response.
func (s *service) do(t *testing.T, method, path, token, body string) response {
	t.Helper()
	return s.Do(t, method, path, token, body, nil)
}

// create places an order and returns it, failing the test unless it got 201.
func (s *service) create(t *testing.T, token, item string, quantity int) Order {
	t.Helper()
	body, _ := json.Marshal(NewOrder{Item: item, Quantity: quantity})
	r := s.do(t, "POST", "/orders", token, string(body))
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /orders: status %d, body %s", r.Status, r.Body)
	}
	return decodeOrder(t, r.Body)
}

// list returns the orders of a list endpoint, failing unless it got 200.
func (s *service) list(t *testing.T, path, token string) []Order {
	t.Helper()
	r := s.do(t, "GET", path, token, "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", path, r.Status, r.Body)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &fields); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, r.Body)
	}
	if diff := cmp.Diff([]string{"orders"}, sortedKeys(fields)); diff != "" {
		t.Fatalf("GET %s: fields (-want +got):\n%s", path, diff)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(fields["orders"], &raw); err != nil || raw == nil {
		t.Fatalf("GET %s: orders is not an array: %s", path, r.Body)
	}
	out := []Order{}
	for _, o := range raw {
		out = append(out, decodeOrder(t, o))
	}
	return out
}

var (
	orderFields       = []string{"created_at", "id", "item", "quantity", "tenant_id", "user_id"}
	pricedOrderFields = []string{"created_at", "id", "item", "quantity", "tenant_id", "unit_price_cents", "user_id"}
)

// decodeOrder decodes an order and checks that it has exactly the
// documented fields: unit_price_cents only on a priced order.
func decodeOrder(t *testing.T, body []byte) Order {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("order: %v in %s", err, body)
	}
	want := orderFields
	if _, priced := fields["unit_price_cents"]; priced {
		want = pricedOrderFields
	}
	if diff := cmp.Diff(want, sortedKeys(fields)); diff != "" {
		t.Fatalf("order fields (-want +got):\n%s", diff)
	}
	var o Order
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("order: %v in %s", err, body)
	}
	return o
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ids(orders []Order) []string {
	out := []string{}
	for _, o := range orders {
		out = append(out, o.ID)
	}
	return out
}

var orderID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestCreateListGet(t *testing.T) {
	forEachStore(t, testCreateListGet)
}

func testCreateListGet(t *testing.T, env map[string]string) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, env)
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	before := time.Now().UTC()
	r := svc.do(t, "POST", "/orders", alice, `{"item":"anvil","quantity":2}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /orders: status %d, body %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	created := decodeOrder(t, r.Body)
	if !orderID.MatchString(created.ID) {
		t.Errorf("id %q is not 16 hex characters", created.ID)
	}
	if loc := r.Header.Get("Location"); loc != "/orders/"+created.ID {
		t.Errorf("Location %q, want /orders/%s", loc, created.ID)
	}
	if created.CreatedAt.Before(before.Add(-time.Second)) || created.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("created_at %v is not about now", created.CreatedAt)
	}
	want := Order{ID: created.ID, TenantID: "acme", UserID: "alice", Item: "anvil", Quantity: 2, CreatedAt: created.CreatedAt}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created order (-want +got):\n%s", diff)
	}

	second := svc.create(t, alice, "rocket skates", 1)
	if second.ID == created.ID {
		t.Errorf("two orders got the ID %s", created.ID)
	}
	if diff := cmp.Diff([]Order{created, second}, svc.list(t, "/orders", alice)); diff != "" {
		t.Errorf("GET /orders (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Order{created, second}, svc.list(t, "/users/alice/orders", alice)); diff != "" {
		t.Errorf("GET /users/alice/orders (-want +got):\n%s", diff)
	}

	got := svc.do(t, "GET", "/orders/"+created.ID, alice, "")
	if got.Status != http.StatusOK {
		t.Fatalf("GET /orders/%s: status %d, body %s", created.ID, got.Status, got.Body)
	}
	if diff := cmp.Diff(created, decodeOrder(t, got.Body)); diff != "" {
		t.Errorf("GET /orders/{id} (-want +got):\n%s", diff)
	}
}

func TestEmptyListIsAnEmptyArray(t *testing.T) {
	forEachStore(t, testEmptyListIsAnEmptyArray)
}

func testEmptyListIsAnEmptyArray(t *testing.T, env map[string]string) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, env)
	tok := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	for _, path := range []string{"/orders", "/users/alice/orders"} {
		r := svc.do(t, "GET", path, tok, "")
		if got := strings.TrimSpace(string(r.Body)); r.Status != http.StatusOK || got != `{"orders":[]}` {
			t.Errorf("GET %s: %d %s, want 200 {\"orders\":[]}", path, r.Status, got)
		}
	}
}

// TestTenantsNeverSeeEachOther checks every endpoint that returns orders,
// including with user names that exist in both tenants.
func TestTenantsNeverSeeEachOther(t *testing.T) {
	forEachStore(t, testTenantsNeverSeeEachOther)
}

func testTenantsNeverSeeEachOther(t *testing.T, env map[string]string) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, env)
	acmeAlice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	acmeSam := iss.MustMint("acme", "premium", authztest.WithSubject("sam"))
	globexEve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))
	globexSam := iss.MustMint("globex", "basic", authztest.WithSubject("sam"))

	acme := []Order{
		svc.create(t, acmeAlice, "anvil", 1),
		svc.create(t, acmeAlice, "dynamite", 12),
		svc.create(t, acmeSam, "bird seed", 3),
	}
	globex := []Order{
		svc.create(t, globexEve, "doomsday device", 1),
		svc.create(t, globexSam, "hammock", 2),
	}
	for _, o := range acme {
		if o.TenantID != "acme" {
			t.Errorf("acme order %s has tenant_id %q", o.ID, o.TenantID)
		}
	}
	for _, o := range globex {
		if o.TenantID != "globex" {
			t.Errorf("globex order %s has tenant_id %q", o.ID, o.TenantID)
		}
	}

	t.Run("list", func(t *testing.T) {
		if diff := cmp.Diff(acme, svc.list(t, "/orders", acmeSam)); diff != "" {
			t.Errorf("acme's GET /orders (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(globex, svc.list(t, "/orders", globexSam)); diff != "" {
			t.Errorf("globex's GET /orders (-want +got):\n%s", diff)
		}
	})

	t.Run("get by id", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			token  string
			orders []Order
		}{
			{"globex reads acme's", globexEve, acme},
			{"acme reads globex's", acmeAlice, globex},
		} {
			for _, o := range c.orders {
				r := svc.do(t, "GET", "/orders/"+o.ID, c.token, "")
				p := servicetest.WantProblem(t, r, http.StatusNotFound)
				if strings.Contains(string(r.Body), o.Item) || strings.Contains(string(r.Body), o.TenantID) {
					t.Errorf("%s order %s: the 404 tells about the order: %s", c.name, o.ID, r.Body)
				}
				if p.Detail != "No order with this ID." {
					t.Errorf("%s order %s: detail %q", c.name, o.ID, p.Detail)
				}
			}
		}
	})

	t.Run("orders of a user", func(t *testing.T) {
		for _, c := range []struct {
			name, path, token string
			want              []Order
		}{
			{"globex asks for acme's alice", "/users/alice/orders", globexEve, []Order{}},
			{"acme asks for globex's eve", "/users/eve/orders", acmeAlice, []Order{}},
			{"acme's sam", "/users/sam/orders", acmeAlice, acme[2:3]},
			{"globex's sam", "/users/sam/orders", globexEve, globex[1:2]},
			{"acme's alice", "/users/alice/orders", acmeSam, acme[0:2]},
		} {
			if diff := cmp.Diff(c.want, svc.list(t, c.path, c.token)); diff != "" {
				t.Errorf("%s: GET %s (-want +got):\n%s", c.name, c.path, diff)
			}
		}
	})
}

// TestEveCannotReadAlicesOrders is the classic bug: the handler of
// /users/{user}/orders never checks that {user} is the caller. Eve of
// globex asks for the orders of alice, who is in acme, and gets none,
// because the store only reads the caller's tenant.
func TestEveCannotReadAlicesOrders(t *testing.T) {
	forEachStore(t, testEveCannotReadAlicesOrders)
}

func testEveCannotReadAlicesOrders(t *testing.T, env map[string]string) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, env)
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	eve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))

	placed := svc.create(t, alice, "anvil", 1)
	if got := svc.list(t, "/users/alice/orders", alice); len(got) != 1 {
		t.Fatalf("alice sees %d of her orders, want 1", len(got))
	}

	r := svc.do(t, "GET", "/users/alice/orders", eve, "")
	if r.Status != http.StatusOK {
		t.Fatalf("eve's GET /users/alice/orders: status %d, body %s", r.Status, r.Body)
	}
	if bytes.Contains(r.Body, []byte(placed.ID)) || bytes.Contains(r.Body, []byte("acme")) {
		t.Errorf("eve sees acme's data: %s", r.Body)
	}
	if got := svc.list(t, "/users/alice/orders", eve); len(got) != 0 {
		t.Errorf("eve sees %d of alice's orders: %v", len(got), ids(got))
	}
}

// TestTenantAndUserComeFromTheToken sends the tenant and user in the body:
// they are unknown fields, refused, and nothing is stored.
func TestTenantAndUserComeFromTheToken(t *testing.T) {
	svc, iss := startWithIssuer(t)
	eve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	for _, body := range []string{
		`{"item":"anvil","quantity":1,"tenant_id":"acme"}`,
		`{"item":"anvil","quantity":1,"user_id":"alice"}`,
		`{"item":"anvil","quantity":1,"tenant_id":"acme","user_id":"alice"}`,
	} {
		p := servicetest.WantProblem(t, svc.do(t, "POST", "/orders", eve, body), http.StatusBadRequest)
		if p.Detail != "The body may only hold the fields item and quantity." {
			t.Errorf("%s: detail %q", body, p.Detail)
		}
	}
	if got := svc.list(t, "/orders", alice); len(got) != 0 {
		t.Errorf("acme has orders after globex's attempts: %v", ids(got))
	}
	if got := svc.list(t, "/orders", eve); len(got) != 0 {
		t.Errorf("globex has orders after refused bodies: %v", ids(got))
	}
}

func TestHealthzNeedsNoToken(t *testing.T) {
	svc, _ := startWithIssuer(t)
	for _, method := range []string{"GET", "HEAD"} {
		r := svc.do(t, method, "/healthz", "", "")
		if r.Status != http.StatusOK {
			t.Errorf("%s /healthz: status %d, want 200", method, r.Status)
		}
		if method == "GET" && strings.TrimSpace(string(r.Body)) != `{"status":"ok"}` {
			t.Errorf("GET /healthz: body %s", r.Body)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	svc, iss := startWithIssuer(t)
	other := authztest.Start(t, authztest.WithAudience(iss.Audience()))
	expired := iss.MustMint("acme", "premium", authztest.WithExpiry(-time.Minute))
	foreign := other.MustMint("acme", "premium", authztest.WithSubject("alice"))

	for _, c := range []struct {
		name, method, path, token, body string
	}{
		{"no token, list", "GET", "/orders", "", ""},
		{"no token, create", "POST", "/orders", "", `{"item":"anvil","quantity":1}`},
		{"no token, get", "GET", "/orders/0123456789abcdef", "", ""},
		{"no token, user's orders", "GET", "/users/alice/orders", "", ""},
		{"no token, unknown path", "GET", "/admin", "", ""},
		{"garbage token", "GET", "/orders", "not-a-token", ""},
		{"expired token", "GET", "/orders", expired, ""},
		{"token of another issuer", "GET", "/orders", foreign, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := svc.do(t, c.method, c.path, c.token, c.body)
			servicetest.WantProblem(t, r, http.StatusUnauthorized)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", r.Header.Get("WWW-Authenticate"))
			}
			if c.token != "" && bytes.Contains(r.Body, []byte(c.token)) {
				t.Errorf("the token is echoed: %s", r.Body)
			}
		})
	}
}

func TestInvalidBodies(t *testing.T) {
	svc, iss := startWithIssuer(t)
	tok := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	const (
		notJSON      = "The body is not a valid JSON object."
		unknownField = "The body may only hold the fields item and quantity."
		wrongType    = "item must be a string and quantity a whole number."
		noItem       = "item is required."
		badQuantity  = "quantity must be between 1 and 10000."
	)
	for _, c := range []struct {
		name, body, detail string
	}{
		{"empty body", "", notJSON},
		{"not JSON", "item=anvil&quantity=1", notJSON},
		{"truncated JSON", `{"item":"anvil",`, notJSON},
		{"array", `[{"item":"anvil","quantity":1}]`, notJSON},
		{"string", `"anvil"`, notJSON},
		{"trailing garbage", `{"item":"anvil","quantity":1} x`, notJSON},
		{"two objects", `{"item":"anvil","quantity":1}{"item":"anvil","quantity":1}`, "The body must hold exactly one JSON object."},
		{"unknown field", `{"item":"anvil","quantity":1,"price":3}`, unknownField},
		{"field in other case", `{"Item":"anvil","quantity":1}`, unknownField},
		{"null", `null`, noItem},
		{"empty object", `{}`, noItem},
		{"empty item", `{"item":"","quantity":1}`, noItem},
		{"blank item", `{"item":"  \t ","quantity":1}`, noItem},
		{"item not a string", `{"item":7,"quantity":1}`, wrongType},
		{"item too long", `{"item":"` + strings.Repeat("é", 201) + `","quantity":1}`, "item must be at most 200 characters."},
		{"item with control character", `{"item":"anvil\u0000","quantity":1}`, "item must not contain control characters."},
		{"no quantity", `{"item":"anvil"}`, badQuantity},
		{"quantity zero", `{"item":"anvil","quantity":0}`, badQuantity},
		{"quantity negative", `{"item":"anvil","quantity":-1}`, badQuantity},
		{"quantity too large", `{"item":"anvil","quantity":10001}`, badQuantity},
		{"quantity fraction", `{"item":"anvil","quantity":1.5}`, wrongType},
		{"quantity string", `{"item":"anvil","quantity":"2"}`, wrongType},
		{"quantity overflows", `{"item":"anvil","quantity":1e30}`, wrongType},
		{"body over 64 KiB", `{"item":"anvil","quantity":1,"pad":"` + strings.Repeat("x", 64<<10) + `"}`, "The body is larger than 64 KiB."},
		{"white space over 64 KiB", `{"item":"anvil","quantity":1}` + strings.Repeat(" ", 64<<10), "The body is larger than 64 KiB."},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := servicetest.WantProblem(t, svc.do(t, "POST", "/orders", tok, c.body), http.StatusBadRequest)
			if p.Detail != c.detail {
				t.Errorf("detail %q, want %q", p.Detail, c.detail)
			}
		})
	}
	if got := svc.list(t, "/orders", tok); len(got) != 0 {
		t.Errorf("invalid bodies stored orders: %v", ids(got))
	}

	// The limits themselves are accepted.
	svc.create(t, tok, strings.Repeat("é", 200), 10_000)
	svc.create(t, tok, "x", 1)
}

func TestUnknownOrder(t *testing.T) {
	forEachStore(t, testUnknownOrder)
}

func testUnknownOrder(t *testing.T, env map[string]string) {
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, env)
	tok := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	for _, id := range []string{"0123456789abcdef", "nope", "%2e%2e"} {
		p := servicetest.WantProblem(t, svc.do(t, "GET", "/orders/"+id, tok, ""), http.StatusNotFound)
		if p.Detail != "No order with this ID." {
			t.Errorf("%s: detail %q", id, p.Detail)
		}
	}
}

// TestGracefulShutdown cancels run's context while a request is held inside
// the service, and checks that the request still completes, that no new
// connection is accepted meanwhile, that run returns nil, and that the
// usage the request recorded is in METER_FILE: meters are flushed after
// the server has drained.
func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	shuttingDown := make(chan struct{})
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Test-Hold") != "" {
				close(entered)
				<-release
			}
			next.ServeHTTP(w, r)
		})
	}
	meterFile := filepath.Join(t.TempDir(), "usage.jsonl")
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"METER_FILE": meterFile},
		withHandlerWrap(hold), withShuttingDown(func() { close(shuttingDown) }))
	tok := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))

	type result struct {
		status int
		body   []byte
		err    error
	}
	held := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", svc.URL+"/orders", strings.NewReader(`{"item":"anvil","quantity":1}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Test-Hold", "1")
		resp, err := svc.Client.Do(req)
		if err != nil {
			held <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		held <- result{status: resp.StatusCode, body: body, err: err}
	}()

	<-entered
	svc.Cancel()
	<-shuttingDown // the listener is closed; Shutdown waits for the request

	select {
	case <-svc.Done():
		t.Fatalf("run returned %v while a request was in flight", svc.Wait())
	default:
	}
	if _, err := servicetest.NewClient(t).Get(svc.URL + "/healthz"); err == nil {
		t.Error("a new connection was served during shutdown")
	}

	close(release)
	res := <-held
	if res.err != nil {
		t.Fatalf("the in-flight request failed: %v", res.err)
	}
	if res.status != http.StatusCreated {
		t.Fatalf("the in-flight request: status %d, body %s", res.status, res.body)
	}
	if o := decodeOrder(t, res.body); o.TenantID != "acme" || o.UserID != "alice" {
		t.Errorf("the in-flight request stored %+v", o)
	}
	if err := svc.Wait(); err != nil {
		t.Fatalf("run returned %v, want nil", err)
	}
	if !strings.Contains(svc.Stdout.String(), `"msg":"orders service stopped"`) {
		t.Errorf("no stop log line in:\n%s", svc.Stdout)
	}
	created := sumUsage(readUsage(t, meterFile), meterOrdersCreated, "")
	if diff := cmp.Diff(map[string]float64{"acme": 1}, created); diff != "" {
		t.Errorf("orders.created in METER_FILE (-want +got):\n%s", diff)
	}
}

var exportLine = regexp.MustCompile(`(?m)^export (ACME_TOKEN|GLOBEX_TOKEN)=(\S+)$`)

// TestDevelopmentMode starts the service with an empty environment, as
// `go run ./examples/orders` does, and uses the tokens it prints.
func TestDevelopmentMode(t *testing.T) {
	svc := startService(t, map[string]string{"ADDR": "127.0.0.1:0"})
	out := svc.Stderr.String()

	for _, want := range []string{
		"DEVELOPMENT MODE — tokens are minted by an in-process issuer; never use in production",
		"listening on " + svc.URL + "\n",
		"/users/alice/orders -H \"Authorization: Bearer $GLOBEX_TOKEN\"",
		"\nlogs         JSON lines on stdout, level info (LOG_LEVEL)\n",
		"\nmeters       usage records as CloudWatch EMF lines on stdout, namespace Tenancy/Orders (METER_FILE for a file)\n",
		"\nstore        in memory, lost at exit (DYNAMODB_ENDPOINT for DynamoDB, such as dynalite)\n",
		"\nlimits       in memory, per process (REDIS_URL to share them)\n",
		"\ncatalog      none: orders are not priced (CATALOG_URL)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner lacks %q:\n%s", want, out)
		}
	}
	tokens := map[string]string{}
	for _, m := range exportLine.FindAllStringSubmatch(out, -1) {
		tokens[m[1]] = m[2]
	}
	if len(tokens) != 2 {
		t.Fatalf("found tokens %v in the banner:\n%s", sortedKeys(tokens), out)
	}

	placed := svc.create(t, tokens["ACME_TOKEN"], "anvil", 2)
	if placed.TenantID != "acme" || placed.UserID != "alice" {
		t.Errorf("ACME_TOKEN placed %+v, want tenant acme, user alice", placed)
	}
	eve := svc.create(t, tokens["GLOBEX_TOKEN"], "hammock", 1)
	if eve.TenantID != "globex" || eve.UserID != "eve" {
		t.Errorf("GLOBEX_TOKEN placed %+v, want tenant globex, user eve", eve)
	}
	if got := svc.list(t, "/users/alice/orders", tokens["GLOBEX_TOKEN"]); len(got) != 0 {
		t.Errorf("eve reads alice's orders: %v", ids(got))
	}
	servicetest.WantProblem(t, svc.do(t, "GET", "/orders/"+placed.ID, tokens["GLOBEX_TOKEN"], ""), http.StatusNotFound)

	svc.Stop(t) // every line logged is on stdout
	first, _, _ := strings.Cut(svc.Stdout.String(), "\n")
	var started struct {
		Msg, Mode, Addr string
	}
	if err := json.Unmarshal([]byte(first), &started); err != nil {
		t.Fatalf("stdout does not start with a JSON log line: %v\n%s", err, first)
	}
	if started.Msg != "orders service started" || started.Mode != "development" || "http://"+started.Addr != svc.URL {
		t.Errorf("start log line %s", first)
	}
}

// TestProductionModePrintsNoTokens checks that with AUTH_ISSUER set the
// service prints its address and nothing a client could use.
func TestProductionModePrintsNoTokens(t *testing.T) {
	svc, _ := startWithIssuer(t)
	if got, want := svc.Stderr.String(), "listening on "+svc.URL+"\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	svc.Stop(t) // every line logged is on stdout
	if strings.Contains(svc.Stdout.String(), "DEVELOPMENT") {
		t.Errorf("stdout mentions development mode:\n%s", svc.Stdout)
	}
}

func TestRunRefusesBadConfiguration(t *testing.T) {
	const issuer = "https://issuer.example" // never contacted: run fails first
	missingTiers := writeFile(t, "tiers.json", `{"basic": {"rate": 5, "burst": 10}}`)
	unknownTier := writeFile(t, "tiers.json", `{"basic": {"rate": 5, "burst": 10}, "standard": {"rate": 5, "burst": 10},
		"premium": {"rate": 5, "burst": 10}, "platinum": {"rate": 5, "burst": 10}, "gold": {"rate": 5, "burst": 10}}`)
	badBurst := writeFile(t, "orders-tiers.json", `{"basic": {"rate": 5, "burst": 0}}`)
	missingDir := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"issuer without audience", []string{"orders"}, map[string]string{"AUTH_ISSUER": issuer}, "AUTH_AUDIENCE is required when AUTH_ISSUER is set"},
		{"issuer and a development setting", []string{"orders"}, map[string]string{"AUTH_ISSUER": issuer, "AUTH_AUDIENCE": "orders", "DEV_TOKEN_LIFETIME": "1h"}, "DEV_TOKEN_LIFETIME"},
		{"an argument", []string{"orders", "serve"}, nil, `unexpected argument "serve"`},
		{"a tier without limits", []string{"orders"}, map[string]string{"AUTH_ISSUER": issuer, "AUTH_AUDIENCE": "orders", "TIERS_FILE": missingTiers},
			"TIERS_FILE " + missingTiers + ": throttle: no limits for tier standard, premium, platinum"},
		{"limits for a tier not sold", []string{"orders"}, map[string]string{"TIERS_FILE": unknownTier},
			"TIERS_FILE " + unknownTier + `: throttle: limits for tier "gold"`},
		{"an invalid limit", []string{"orders"}, map[string]string{"TIERS_FILE": badBurst},
			"TIERS_FILE " + badBurst + `: throttle: limits "basic": Burst must be at least 1, got 0`},
		{"a bad REDIS_URL", []string{"orders"}, map[string]string{"REDIS_URL": "localhost:6379"}, `REDIS_URL "localhost:6379": redis: invalid URL scheme`},
		{"a bad LOG_LEVEL", []string{"orders"}, map[string]string{"LOG_LEVEL": "verbose"}, `LOG_LEVEL "verbose": want debug, info, warn or error`},
		{"a role without a table", []string{"orders"}, map[string]string{"AWS_TENANT_ROLE_ARN": "arn:aws:iam::123456789012:role/orders-tenant"},
			"AWS_TENANT_ROLE_ARN is set but the orders are kept in memory"},
		{"METER_FILE in a missing folder", []string{"orders"}, map[string]string{"METER_FILE": missingDir + "/usage.jsonl"},
			"METER_FILE " + missingDir + "/usage.jsonl: "},
		{"METER_STATE_DIR missing", []string{"orders"}, map[string]string{"METER_FILE": filepath.Join(t.TempDir(), "usage.jsonl"), "METER_STATE_DIR": missingDir},
			"METER_STATE_DIR " + missingDir + ": "},
		{"THROTTLE_REPLICAS without REDIS_URL", []string{"orders"}, map[string]string{"THROTTLE_REPLICAS": "3"},
			"THROTTLE_REPLICAS is set but REDIS_URL is not"},
		{"THROTTLE_REPLICAS not a count", []string{"orders"}, map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0", "THROTTLE_REPLICAS": "0"},
			`THROTTLE_REPLICAS "0": want a whole number from 1 to 10000`},
		{"METER_STATE_DIR without METER_FILE", []string{"orders"}, map[string]string{"METER_STATE_DIR": t.TempDir()},
			"METER_STATE_DIR is set but METER_FILE is not"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), c.args, func(n string) string { return c.env[n] }, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("run: %v, want an error containing %q", err, c.want)
			}
			if stderr.Len() != 0 || stdout.Len() != 0 {
				t.Errorf("run printed %q and %q before failing", stdout.String(), stderr.String())
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"orders", "-h"}, func(string) string { return "" }, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ADDR", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL", "AUTH_TENANT_CLAIM", "AUTH_TIER_CLAIM", "AUTH_ROLES_CLAIM", "TIERS_FILE", "TENANT_OVERRIDES_FILE", "REDIS_URL", "THROTTLE_REPLICAS",
		"DYNAMODB_ENDPOINT", "ORDERS_TABLE", "AWS_TENANT_ROLE_ARN", "CATALOG_URL", "METER_FILE", "METER_STATE_DIR", "LOG_LEVEL", "DEV_ISSUER_ADDR", "DEV_TOKEN_LIFETIME"} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("usage does not mention %s", name)
		}
	}
}

// syncBuffer collects output written while the test reads it.
type syncBuffer = syncbuf.Buffer
