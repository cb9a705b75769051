package dynamoguard_test

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenancykit/tenancy/authz/awscreds/dynamoguard"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/tenant"
)

// guardCountingTransport counts the requests that reach the server, by
// DynamoDB operation.
type guardCountingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	ops  map[string]int
}

func (c *guardCountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.ops[r.Header.Get("X-Amz-Target")]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *guardCountingTransport) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops["DynamoDB_20120810."+op]
}

// TestGuardDynalite runs the guard in a real client against a DynamoDB API:
// tenant B's requests for tenant A's items are refused before they are
// sent, and B's own work as usual.
func TestGuardDynalite(t *testing.T) {
	d := testservers.Dynalite(t)

	transport := &http.Transport{}
	counter := &guardCountingTransport{next: transport, ops: map[string]int{}}
	t.Cleanup(transport.CloseIdleConnections) // before the server stops
	var refusals guardRecorder
	const table = "guard_orders"
	g, err := dynamoguard.New(dynamoguard.WithTable(table, "tenant_id"), dynamoguard.WithKeyPrefix("TENANT#"), dynamoguard.WithOnRefuse(refusals.hook))
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{
		Region:      testservers.Region,
		Credentials: credentials.NewStaticCredentialsProvider(testservers.AccessKeyID, testservers.SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: counter},
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) }, g.Options())

	ctx := context.Background()
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("tenant_id"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("order_id"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("tenant_id"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("order_id"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatalf("CreateTable (passes the guard): %v", err)
	}
	// dynalite makes the table ACTIVE a moment later, even with no delay.
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 5*time.Second); err != nil {
		t.Fatalf("table not active: %v", err)
	}

	a, b := guardCtx("tenant-a"), guardCtx("tenant-b")
	key := func(id, order string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"tenant_id": guardS("TENANT#" + id), "order_id": guardS(order)}
	}
	item := func(id, order string) map[string]types.AttributeValue {
		k := key(id, order)
		k["owner"] = guardS(id)
		return k
	}
	for _, w := range []struct {
		ctx context.Context
		id  string
	}{{a, "tenant-a"}, {b, "tenant-b"}} {
		for _, order := range []string{"o1", "o2"} {
			if _, err := client.PutItem(w.ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item(w.id, order)}); err != nil {
				t.Fatalf("PutItem %s %s: %v", w.id, order, err)
			}
		}
	}
	if _, err := client.PutItem(a, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("tenant-b", "planted")}); !errors.Is(err, dynamoguard.ErrCrossTenant) {
		t.Fatalf("tenant A's PutItem of a B item = %v, want ErrCrossTenant", err)
	}
	if got := refusals.take(); len(got) != 1 {
		t.Fatalf("hook called %d times for one refusal", len(got))
	}

	// What tenant B may not do: each refused, counted by the hook, never sent.
	refused := []struct {
		op   string
		call func() error
		want error
	}{
		{"GetItem", func() error {
			_, err := client.GetItem(b, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("tenant-a", "o1")})
			return err
		}, dynamoguard.ErrCrossTenant},
		{"Query", func() error {
			_, err := client.Query(b, &dynamodb.QueryInput{
				TableName:                 aws.String(table),
				KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :o)"),
				ExpressionAttributeNames:  map[string]string{"#pk": "tenant_id", "#sk": "order_id"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": guardS("TENANT#tenant-a"), ":o": guardS("o")},
			})
			return err
		}, dynamoguard.ErrCrossTenant},
		{"BatchGetItem", func() error {
			_, err := client.BatchGetItem(b, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				table: {Keys: []map[string]types.AttributeValue{key("tenant-b", "o1"), key("tenant-a", "o2"), key("tenant-b", "o2")}},
			}})
			return err
		}, dynamoguard.ErrCrossTenant},
		{"TransactGetItems", func() error {
			_, err := client.TransactGetItems(b, &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{
				{Get: &types.Get{TableName: aws.String(table), Key: key("tenant-b", "o1")}},
				{Get: &types.Get{TableName: aws.String(table), Key: key("tenant-a", "o1")}},
			}})
			return err
		}, dynamoguard.ErrCrossTenant},
		{"DeleteItem", func() error {
			_, err := client.DeleteItem(b, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key("tenant-a", "o1")})
			return err
		}, dynamoguard.ErrCrossTenant},
		{"Scan", func() error {
			_, err := client.Scan(b, &dynamodb.ScanInput{TableName: aws.String(table)})
			return err
		}, dynamoguard.ErrUncheckable},
		{"GetItem", func() error { // no tenant at all
			_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("tenant-a", "o1")})
			return err
		}, tenant.ErrNoTenant},
	}
	for _, r := range refused {
		before := counter.count(r.op)
		err := r.call()
		var ge *dynamoguard.Error
		if !errors.As(err, &ge) || !errors.Is(err, r.want) {
			t.Errorf("%s = %v, want a *Error wrapping %v", r.op, err, r.want)
			continue
		}
		if ge.Operation != r.op {
			t.Errorf("%s: Error.Operation = %q", r.op, ge.Operation)
		}
		if n := counter.count(r.op) - before; n != 0 {
			t.Errorf("%s: refused, but %d request(s) reached the server", r.op, n)
		}
		if got := refusals.take(); len(got) != 1 || got[0] != ge {
			t.Errorf("%s: hook called with %v, want once with the error", r.op, got)
		}
	}

	// What tenant B may do: its own items, through the server.
	sent := func(op string, f func() error) {
		t.Helper()
		before := counter.count(op)
		if err := f(); err != nil {
			t.Errorf("%s: %v", op, err)
		}
		if counter.count(op) == before {
			t.Errorf("%s passed but reached no server", op)
		}
	}
	sent("GetItem", func() error {
		out, err := client.GetItem(b, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("tenant-b", "o1")})
		if err == nil && guardOwner(out.Item) != "tenant-b" {
			t.Errorf("GetItem got %v", out.Item)
		}
		return err
	})
	sent("Query", func() error {
		out, err := client.Query(b, &dynamodb.QueryInput{
			TableName:                 aws.String(table),
			KeyConditionExpression:    aws.String("#sk BETWEEN :lo AND :hi AND #pk = :pk"),
			ExpressionAttributeNames:  map[string]string{"#pk": "tenant_id", "#sk": "order_id"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": guardS("TENANT#tenant-b"), ":lo": guardS("o0"), ":hi": guardS("o9")},
		})
		if err == nil {
			var owners []string
			for _, it := range out.Items {
				owners = append(owners, guardOwner(it))
			}
			if len(owners) != 2 || owners[0] != "tenant-b" || owners[1] != "tenant-b" {
				t.Errorf("Query got the items of %v, want tenant B's two", owners)
			}
		}
		return err
	})
	sent("Query", func() error { // the legacy form
		out, err := client.Query(b, &dynamodb.QueryInput{TableName: aws.String(table), KeyConditions: map[string]types.Condition{
			"tenant_id": {ComparisonOperator: types.ComparisonOperatorEq, AttributeValueList: []types.AttributeValue{guardS("TENANT#tenant-b")}},
		}})
		if err == nil && len(out.Items) != 2 {
			t.Errorf("legacy Query got %d items, want 2", len(out.Items))
		}
		return err
	})
	sent("BatchGetItem", func() error {
		out, err := client.BatchGetItem(b, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			table: {Keys: []map[string]types.AttributeValue{key("tenant-b", "o1"), key("tenant-b", "o2")}},
		}})
		if err == nil {
			var owners []string
			for _, it := range out.Responses[table] {
				owners = append(owners, guardOwner(it))
			}
			sort.Strings(owners)
			if len(owners) != 2 || owners[0] != "tenant-b" || owners[1] != "tenant-b" {
				t.Errorf("BatchGetItem got the items of %v, want tenant B's two", owners)
			}
		}
		return err
	})
	sent("BatchWriteItem", func() error {
		_, err := client.BatchWriteItem(b, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			table: {{PutRequest: &types.PutRequest{Item: item("tenant-b", "o3")}}, {DeleteRequest: &types.DeleteRequest{Key: key("tenant-b", "o2")}}},
		}})
		return err
	})
	sent("UpdateItem", func() error {
		_, err := client.UpdateItem(b, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(table),
			Key:                       key("tenant-b", "o1"),
			UpdateExpression:          aws.String("SET #s = :s"),
			ExpressionAttributeNames:  map[string]string{"#s": "status"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":s": guardS("paid")},
		})
		return err
	})
	sent("DeleteItem", func() error {
		_, err := client.DeleteItem(b, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key("tenant-b", "o3")})
		return err
	})

	// Dynalite has no transactions: B's own TransactGetItems passes the
	// guard and reaches the server, which answers that it does not know
	// the operation.
	before := counter.count("TransactGetItems")
	_, err = client.TransactGetItems(b, &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{
		{Get: &types.Get{TableName: aws.String(table), Key: key("tenant-b", "o1")}},
	}})
	var ge *dynamoguard.Error
	if errors.As(err, &ge) {
		t.Errorf("own TransactGetItems refused: %v", err)
	}
	if counter.count("TransactGetItems") == before {
		t.Errorf("own TransactGetItems reached no server")
	}

	// Tenant A's items are as A left them.
	out, err := client.Query(a, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("tenant_id = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": guardS("TENANT#tenant-a")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 2 {
		t.Errorf("tenant A has %d items, want 2", len(out.Items))
	}
	for _, it := range out.Items {
		if guardOwner(it) != "tenant-a" {
			t.Errorf("tenant A's partition holds %v", it)
		}
	}
	if got := refusals.take(); len(got) != 0 {
		t.Errorf("hook called for requests that passed: %v", got)
	}
}

func guardOwner(item map[string]types.AttributeValue) string {
	if s, ok := item["owner"].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// TestGuardDynaliteTables runs the guard against a DynamoDB API with a
// table it was not told about: "users" is keyed by id, and tenant_id is a
// plain attribute that a request sets itself, so a guard that read it would
// let tenant A overwrite tenant B's user. The guard refuses every request on
// the table, while operations on tables, not items, still pass.
func TestGuardDynaliteTables(t *testing.T) {
	d := testservers.Dynalite(t)
	transport := &http.Transport{}
	counter := &guardCountingTransport{next: transport, ops: map[string]int{}}
	t.Cleanup(transport.CloseIdleConnections) // before the server stops
	cfg := aws.Config{
		Region:      testservers.Region,
		Credentials: credentials.NewStaticCredentialsProvider(testservers.AccessKeyID, testservers.SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: counter},
	}
	endpoint := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) }
	admin := dynamodb.NewFromConfig(cfg, endpoint) // the service's own, unguarded
	g, err := dynamoguard.New(dynamoguard.WithTable("guard_orders", "tenant_id"))
	if err != nil {
		t.Fatal(err)
	}
	client := dynamodb.NewFromConfig(cfg, endpoint, g.Options())

	const users = "guard_users"
	ctx := context.Background()
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(users),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatalf("CreateTable through the guard: %v", err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	// The waiter's DescribeTable goes through the guard, as do these.
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(users)}, 5*time.Second); err != nil {
		t.Fatalf("DescribeTable through the guard: %v", err)
	}
	if out, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil || len(out.TableNames) != 1 {
		t.Fatalf("ListTables through the guard = %v, %v", out, err)
	}
	if _, err := client.TagResource(ctx, &dynamodb.TagResourceInput{
		ResourceArn: aws.String("arn:aws:dynamodb:" + testservers.Region + ":000000000000:table/" + users),
		Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("orders")}},
	}); err != nil {
		var ge *dynamoguard.Error
		if errors.As(err, &ge) {
			t.Fatalf("TagResource refused by the guard: %v", err)
		}
	}

	user := func(tenantID string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"id": guardS("u1"), "tenant_id": guardS(tenantID), "owner": guardS(tenantID)}
	}
	if _, err := admin.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(users), Item: user("tenant-b")}); err != nil {
		t.Fatal(err)
	}
	a := guardCtx("tenant-a")
	before := counter.count("PutItem")
	_, err = client.PutItem(a, &dynamodb.PutItemInput{TableName: aws.String(users), Item: user("tenant-a")})
	var ge *dynamoguard.Error
	if !errors.As(err, &ge) || !errors.Is(err, dynamoguard.ErrUncheckable) || !strings.Contains(ge.Reason, "WithTable") {
		t.Fatalf("tenant A's PutItem over B's user = %v, want a *Error wrapping ErrUncheckable that names WithTable", err)
	}
	if n := counter.count("PutItem") - before; n != 0 {
		t.Errorf("refused PutItem reached the server %d time(s)", n)
	}
	if _, err := client.GetItem(a, &dynamodb.GetItemInput{TableName: aws.String(users), Key: map[string]types.AttributeValue{"id": guardS("u1")}}); !errors.Is(err, dynamoguard.ErrUncheckable) {
		t.Errorf("GetItem on the unknown table = %v, want ErrUncheckable", err)
	}
	out, err := admin.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(users), Key: map[string]types.AttributeValue{"id": guardS("u1")}})
	if err != nil {
		t.Fatal(err)
	}
	if guardOwner(out.Item) != "tenant-b" {
		t.Errorf("B's user now belongs to %q", guardOwner(out.Item))
	}

	// Named as unguarded, the table is the service's to manage.
	open, err := dynamoguard.New(dynamoguard.WithTable("guard_orders", "tenant_id"), dynamoguard.WithUnguardedTable(users))
	if err != nil {
		t.Fatal(err)
	}
	unguarded := dynamodb.NewFromConfig(cfg, endpoint, open.Options())
	if out, err := unguarded.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(users), Key: map[string]types.AttributeValue{"id": guardS("u1")}}); err != nil || guardOwner(out.Item) != "tenant-b" {
		t.Errorf("GetItem on an unguarded table = %v, %v", out, err)
	}
}
