package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/authz/awscreds"
	"github.com/tenancykit/tenancy/authz/awscreds/dynamoguard"
	"github.com/tenancykit/tenancy/authz/awscreds/ststest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
)

// openTestDynamo opens the DynamoDB store on a dynalite of its own, as run
// does, with its audit events in the returned buffer.
func openTestDynamo(t *testing.T, table string) (*dynamo, *syncBuffer) {
	t.Helper()
	d := testservers.Dynalite(t)
	audit := new(syncBuffer)
	auditor := logging.NewAuditor(newLogger(audit, slog.LevelInfo).Handler())
	cfg := config{dynamoEndpoint: d.Endpoint, ordersTable: table}
	dyn, err := openDynamo(context.Background(), cfg, func(string) string { return "" }, auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dyn.close)
	return dyn, audit
}

// TestDynamoGuardRefusesCrossTenantKeys plays a bug in the store: code that
// builds acme's key while acting for globex, with globex's context. The
// guard on the store's client refuses each such request before it is sent,
// with dynamoguard.ErrCrossTenant, and writes one audit event that names the
// operation and table but no key value; acme's order is untouched.
func TestDynamoGuardRefusesCrossTenantKeys(t *testing.T) {
	dyn, audit := openTestDynamo(t, "orders_guard")
	s := dyn.store
	acme, globex := tenantCtx(t, "acme", "alice"), tenantCtx(t, "globex", "eve")
	placed, err := s.Create(acme, NewOrder{Item: "anvil", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	acmeKey := orderKey("acme", placed.ID)
	stolen := marshalOrder(Order{ID: "0123456789abcdef", TenantID: "acme", UserID: "eve", Item: "anvil", Quantity: 1})

	for _, c := range []struct {
		op   string
		call func(ctx context.Context) error
	}{
		{"GetItem", func(ctx context.Context) error {
			_, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: acmeKey})
			return err
		}},
		{"PutItem", func(ctx context.Context) error {
			_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: stolen})
			return err
		}},
		{"DeleteItem", func(ctx context.Context) error {
			_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: acmeKey})
			return err
		}},
		{"Query", func(ctx context.Context) error {
			_, err := s.client.Query(ctx, &dynamodb.QueryInput{
				TableName:                 aws.String(s.table),
				KeyConditionExpression:    aws.String("tenant_id = :t"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":t": str("acme")},
			})
			return err
		}},
	} {
		t.Run(c.op, func(t *testing.T) {
			before := len(servicetest.ParseLines(t, audit.String()))
			err := c.call(globex)
			if !errors.Is(err, dynamoguard.ErrCrossTenant) {
				t.Fatalf("%s of acme's key for globex: %v, want dynamoguard.ErrCrossTenant", c.op, err)
			}
			lines := servicetest.ParseLines(t, audit.String())[before:]
			if len(lines) != 1 {
				t.Fatalf("%d audit lines, want 1: %v", len(lines), lines)
			}
			want := map[string]any{
				"level": "INFO", "msg": "audit", "log_type": "audit", "action": "dynamodb." + c.op,
				"resource": "orders_guard", "outcome": "denied", "tenant_id": "globex", "tenant_tier": "basic", "user_id": "eve",
			}
			got := lines[0]
			for k, v := range want {
				if got[k] != v {
					t.Errorf("audit %s = %v, want %v", k, got[k], v)
				}
			}
			line, _ := json.Marshal(got)
			if strings.Contains(string(line), "acme") || strings.Contains(string(line), placed.ID) {
				t.Errorf("the audit line names the key it refused: %s", line)
			}
		})
	}

	// acme's order is as it was, and the store, used as it should be,
	// finds nothing of acme's for globex, with no refusal to audit.
	before := len(servicetest.ParseLines(t, audit.String()))
	if got, err := s.Get(acme, placed.ID); err != nil || got.ID != placed.ID {
		t.Errorf("acme's Get after the attempts: %v, %v", got, err)
	}
	if _, err := s.Get(globex, placed.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("globex's Get of acme's ID: %v, want ErrNotFound", err)
	}
	if list, err := s.ListByUser(globex, "alice"); err != nil || len(list) != 0 {
		t.Errorf("globex's ListByUser(alice): %v, %v, want none", list, err)
	}
	if n := len(servicetest.ParseLines(t, audit.String())) - before; n != 0 {
		t.Errorf("the store's own calls were refused %d times", n)
	}
}

func TestDynamoStoreNeedsATenant(t *testing.T) {
	dyn, audit := openTestDynamo(t, "orders_no_tenant")
	s := dyn.store
	wantNoTenantRefused(t, s)
	// And the guard would have stopped a request without a tenant.
	_, err := s.client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: orderKey("acme", "x")})
	if !errors.Is(err, tenant.ErrNoTenant) {
		t.Errorf("GetItem without a tenant: %v, want tenant.ErrNoTenant", err)
	}
	if n := len(servicetest.ParseLines(t, audit.String())); n != 1 {
		t.Errorf("%d audit lines, want 1", n)
	}
}

// TestDynamoStoreKeepsPriceAndOrder round-trips an order with a price and
// checks that lists come oldest first although the sort key is random.
func TestDynamoStoreKeepsPriceAndOrder(t *testing.T) {
	dyn, _ := openTestDynamo(t, "orders_round_trip")
	s := dyn.store
	ctx := tenantCtx(t, "acme", "alice")
	price := int64(1999)
	var placed []Order
	for i := range 20 {
		in := NewOrder{Item: "anvil", Quantity: i + 1}
		if i%2 == 0 {
			in.UnitPriceCents = &price
		}
		o, err := s.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(placed, got); diff != "" {
		t.Errorf("List (-placed +got):\n%s", diff)
	}
	one, err := s.Get(ctx, placed[0].ID)
	if err != nil || one.UnitPriceCents == nil || *one.UnitPriceCents != 1999 {
		t.Errorf("Get of a priced order: %+v, %v", one, err)
	}
}

// TestDynamoTableWithOtherKeys starts the service on a table that exists
// with keys the store does not use: it refuses to start, naming the table.
func TestDynamoTableWithOtherKeys(t *testing.T) {
	d := testservers.Dynalite(t)
	err := d.Call("CreateTable", map[string]any{
		"TableName":            "orders_other",
		"AttributeDefinitions": []map[string]string{{"AttributeName": "pk", "AttributeType": "S"}},
		"KeySchema":            []map[string]string{{"AttributeName": "pk", "KeyType": "HASH"}},
		"BillingMode":          "PAY_PER_REQUEST",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ADDR": "127.0.0.1:0", "DYNAMODB_ENDPOINT": d.Endpoint, "ORDERS_TABLE": "orders_other"}
	err = run(context.Background(), []string{"orders"}, func(n string) string { return env[n] }, new(syncBuffer), new(syncBuffer))
	if err == nil || !strings.Contains(err.Error(), "ORDERS_TABLE orders_other") || !strings.Contains(err.Error(), `want partition key "tenant_id" and sort key "order_id"`) {
		t.Errorf("run: %v, want an error naming ORDERS_TABLE and the keys", err)
	}
}

// TestTenantRoleCredentials sets AWS_TENANT_ROLE_ARN: each tenant's DynamoDB
// calls are signed with credentials of the role assumed for that tenant,
// tagged TenantId=<tenant>, once per tenant however many requests it
// sends; a tenant whose credentials STS refuses gets 503 while the others
// carry on.
func TestTenantRoleCredentials(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/orders-tenant"
	sts := ststest.Start(t)
	env := dynamoEnv(t)
	env["AWS_TENANT_ROLE_ARN"] = role
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, env, withSTS(sts.Client()))
	alice := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	eve := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))

	a1 := svc.create(t, alice, "anvil", 1)
	a2 := svc.create(t, alice, "dynamite", 2)
	g1 := svc.create(t, eve, "hammock", 1)
	if diff := cmp.Diff([]Order{a1, a2}, svc.list(t, "/orders", alice)); diff != "" {
		t.Errorf("acme's orders (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Order{g1}, svc.list(t, "/orders", eve)); diff != "" {
		t.Errorf("globex's orders (-want +got):\n%s", diff)
	}

	calls := sts.Calls()
	var tagged []string
	for _, c := range calls {
		tagged = append(tagged, c.Tags[awscreds.DefaultTagKey])
		if c.RoleARN != role {
			t.Errorf("AssumeRole of %q, want %q", c.RoleARN, role)
		}
		if want := "tenant-" + c.Tags[awscreds.DefaultTagKey]; c.RoleSessionName != want {
			t.Errorf("role session %q, want %q", c.RoleSessionName, want)
		}
	}
	slices.Sort(tagged)
	if diff := cmp.Diff([]string{"acme", "globex"}, tagged); diff != "" {
		t.Errorf("AssumeRole calls by TenantId tag (-want +got):\n%s", diff)
	}

	sts.Fail("initech", "AccessDenied")
	sam := iss.MustMint("initech", "standard", authztest.WithSubject("sam"))
	r := svc.do(t, "POST", "/orders", sam, `{"item":"anvil","quantity":1}`)
	var p throttled // a problem with retry_after
	if err := json.Unmarshal(r.Body, &p); err != nil || r.Status != http.StatusServiceUnavailable ||
		!strings.HasSuffix(p.Type, "#tenant-unavailable") || p.RetryAfter < 1 || r.Header.Get("Retry-After") == "" {
		t.Errorf("initech: status %d, Retry-After %q, body %s: want 503 #tenant-unavailable with Retry-After", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	svc.create(t, alice, "anvil", 3) // acme carries on
	svc.Stop(t)

	var refused, logged bool
	for _, line := range svc.Lines(t) {
		if line["msg"] == "request" && line["status"] == 503.0 {
			refused = line["tenant_id"] == "initech" && line["rejected_by"] == "awscreds" && line["reject_reason"] == "credentials"
		}
		if line["msg"] == "tenant AWS credentials unavailable" {
			logged = line["tenant_id"] == "initech" && line["level"] == "ERROR"
		}
	}
	if !refused || !logged {
		t.Errorf("want an access line of initech's 503 rejected by awscreds (%v) and an error line (%v):\n%s", refused, logged, svc.Stdout)
	}
	for _, c := range []struct{ tenant string }{{"acme"}, {"globex"}} {
		if n := sts.CallsFor(awscreds.DefaultTagKey, c.tenant); n != 1 {
			t.Errorf("%d AssumeRole calls for %s, want 1 (cached)", n, c.tenant)
		}
	}
}

// TestDevelopmentModeOnDynalite runs development mode with
// DYNAMODB_ENDPOINT and METER_FILE, as the README shows: the table is
// created, and the banner says where orders and usage go.
func TestDevelopmentModeOnDynalite(t *testing.T) {
	env := dynamoEnv(t)
	env["ADDR"] = "127.0.0.1:0"
	env["METER_FILE"] = filepath.Join(t.TempDir(), "usage.jsonl")
	svc := startService(t, env)
	out := svc.Stderr.String()
	for _, want := range []string{
		"\nstore        DynamoDB table orders_test at " + env["DYNAMODB_ENDPOINT"] + ", the service's own credentials\n",
		"\nmeters       usage records as JSON lines in " + env["METER_FILE"] + ", spooled to " + env["METER_FILE"] + ".spool at shutdown if need be\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner lacks %q:\n%s", want, out)
		}
	}
	var acme string
	for _, m := range exportLine.FindAllStringSubmatch(out, -1) {
		if m[1] == "ACME_TOKEN" {
			acme = m[2]
		}
	}
	placed := svc.create(t, acme, "anvil", 2)
	if got := svc.list(t, "/orders", acme); len(got) != 1 || got[0].ID != placed.ID {
		t.Errorf("acme's orders: %v", ids(got))
	}
}
