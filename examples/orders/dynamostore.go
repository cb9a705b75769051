package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tenancykit/tenancy/authz/awscreds"
	"github.com/tenancykit/tenancy/authz/awscreds/dynamoguard"
	"github.com/tenancykit/tenancy/examples/internal/awskit"
	"github.com/tenancykit/tenancy/logging"
)

// The pooled table: every tenant's orders, partitioned by tenant.
const (
	attrTenant    = "tenant_id" // partition key, S
	attrOrder     = "order_id"  // sort key, S
	attrUser      = "user_id"
	attrItem      = "item"
	attrQuantity  = "quantity" // N
	attrCreatedAt = "created_at"
	attrPrice     = "unit_price_cents" // N, only on priced orders
)

// tableWait bounds the wait for a table created at start to be ACTIVE.
const tableWait = 30 * time.Second

// dynamoStore is a [Store] in a pooled DynamoDB table: partition key
// tenant_id, sort key order_id. Like every Store it takes the tenant from
// the context and never as a parameter, and its client carries an
// dynamoguard.Guard, which refuses any request whose partition key is not
// that tenant before it is sent: should a bug here build another tenant's
// key, the request fails instead of reading the other partition. It is
// safe for concurrent use.
type dynamoStore struct {
	client *dynamodb.Client
	table  string
	now    func() time.Time
}

var _ Store = (*dynamoStore)(nil)

// dynamo is the DynamoDB side of the service, built by [openDynamo].
type dynamo struct {
	store *dynamoStore
	// creds hands out tenant-scoped credentials (AWS_TENANT_ROLE_ARN);
	// nil when the service's own credentials are used.
	creds *awscreds.Provider
	// http carries every AWS call; closed at shutdown.
	http *http.Transport
}

// close closes the idle connections to AWS.
func (d *dynamo) close() { d.http.CloseIdleConnections() }

// openDynamo connects the DynamoDB store of cfg. With DYNAMODB_ENDPOINT
// (local development) it creates the table when it does not exist and
// waits for it to be ACTIVE; in AWS the table is provisioned outside, and
// nothing is called at start. auditor hears of every request the guard
// refuses. sts, when not nil, replaces the STS client of
// AWS_TENANT_ROLE_ARN (tests).
func openDynamo(ctx context.Context, cfg config, getenv func(string) string, auditor *logging.Auditor, sts stscreds.AssumeRoleAPIClient) (*dynamo, error) {
	// The SDK's configuration as any AWS service loads it, with a region
	// and credentials a local emulator takes when DYNAMODB_ENDPOINT is
	// set and the environment names none.
	base, tr, err := awskit.LoadConfig(ctx, getenv, cfg.dynamoEndpoint, "ORDERS_TABLE")
	if err != nil {
		return nil, err
	}
	d := &dynamo{http: tr}
	guard, err := dynamoguard.New(dynamoguard.WithTable(cfg.ordersTable, attrTenant), dynamoguard.WithOnRefuse(func(ctx context.Context, err *dynamoguard.Error) {
		// The error names the operation and table, never a key value,
		// which may be another tenant's ID.
		auditor.Audit(ctx, "dynamodb."+err.Operation, err.Table, logging.OutcomeDenied,
			slog.String("reason", err.Reason))
	}))
	if err != nil {
		d.close()
		return nil, fmt.Errorf("ORDERS_TABLE: %w", err) // unreachable: config checked the name
	}
	endpoint := func(o *dynamodb.Options) {
		if cfg.dynamoEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.dynamoEndpoint)
		}
	}

	if cfg.dynamoEndpoint != "" {
		// The service's own credentials: table management is not a
		// tenant's business, and tenant credentials could not do it.
		admin := dynamodb.NewFromConfig(base, endpoint)
		if err := ensureTable(ctx, admin, cfg.ordersTable); err != nil {
			d.close()
			return nil, fmt.Errorf("DYNAMODB_ENDPOINT %s, ORDERS_TABLE %s: %w", cfg.dynamoEndpoint, cfg.ordersTable, err)
		}
	}

	clientCfg := base
	if cfg.tenantRoleARN != "" {
		if sts == nil {
			sts = stsClient(base)
		}
		p, err := awscreds.New(sts, cfg.tenantRoleARN)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("AWS_TENANT_ROLE_ARN: %w", err)
		}
		d.creds = p
		clientCfg = p.Config(base)
	}
	d.store = &dynamoStore{
		client: dynamodb.NewFromConfig(clientCfg, endpoint, guard.Options()),
		table:  cfg.ordersTable,
		now:    time.Now,
	}
	return d, nil
}

func stsClient(cfg aws.Config) *sts.Client { return sts.NewFromConfig(cfg) }

// ensureTable creates the orders table unless it exists, and waits until
// it is ACTIVE. A table that exists with other keys is an error.
func ensureTable(ctx context.Context, client *dynamodb.Client, table string) error {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName: aws.String(table),
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrTenant), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(attrOrder), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrTenant), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrOrder), KeyType: types.KeyTypeRange},
			},
			BillingMode: types.BillingModePayPerRequest,
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // another replica was first
			return fmt.Errorf("create the table: %w", err)
		}
	case err != nil:
		return fmt.Errorf("describe the table: %w", err)
	default:
		if err := checkKeySchema(out.Table.KeySchema); err != nil {
			return err
		}
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableWait); err != nil {
		return fmt.Errorf("wait for the table: %w", err)
	}
	return nil
}

// checkKeySchema checks that an existing table has the store's keys.
func checkKeySchema(ks []types.KeySchemaElement) error {
	var hash, rng string
	for _, k := range ks {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			rng = aws.ToString(k.AttributeName)
		}
	}
	if hash != attrTenant || rng != attrOrder {
		return fmt.Errorf("the table's keys are %q and %q, want partition key %q and sort key %q: use another ORDERS_TABLE", hash, rng, attrTenant, attrOrder)
	}
	return nil
}

// maxIDAttempts bounds the retries of an order ID that is taken, which
// with 64 random bits does not happen.
const maxIDAttempts = 3

func (s *dynamoStore) Create(ctx context.Context, in NewOrder) (Order, error) {
	t, err := tenantOf(ctx)
	if err != nil {
		return Order{}, err
	}
	o := newOrder(t, in, s.now())
	for range maxIDAttempts {
		o.ID = newOrderID()
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(s.table),
			Item:                marshalOrder(o),
			ConditionExpression: aws.String("attribute_not_exists(" + attrOrder + ")"),
		})
		var taken *types.ConditionalCheckFailedException
		if !errors.As(err, &taken) {
			break
		}
	}
	if err != nil {
		return Order{}, fmt.Errorf("orders: put an order: %w", err)
	}
	return o, nil
}

func (s *dynamoStore) Get(ctx context.Context, id string) (Order, error) {
	t, err := tenantOf(ctx)
	if err != nil {
		return Order{}, err
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            orderKey(t.ID, id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Order{}, fmt.Errorf("orders: get an order: %w", err)
	}
	if out.Item == nil {
		return Order{}, ErrNotFound
	}
	return unmarshalOrder(out.Item)
}

func (s *dynamoStore) List(ctx context.Context) ([]Order, error) {
	return s.query(ctx, "")
}

func (s *dynamoStore) ListByUser(ctx context.Context, userID string) ([]Order, error) {
	if userID == "" {
		return []Order{}, nil // no order has an empty user
	}
	return s.query(ctx, userID)
}

// query reads the tenant's partition, with only userID's orders when it
// is not empty (a filter: the partition is read whole either way, which
// suits partitions of an example's size; a GSI on tenant_id and user_id
// would read only the user's), oldest first.
func (s *dynamoStore) query(ctx context.Context, userID string) ([]Order, error) {
	t, err := tenantOf(ctx)
	if err != nil {
		return nil, err
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String(attrTenant + " = :tenant"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":tenant": str(t.ID)},
		ConsistentRead:            aws.Bool(true),
	}
	if userID != "" {
		in.FilterExpression = aws.String(attrUser + " = :user")
		in.ExpressionAttributeValues[":user"] = str(userID)
	}
	out := []Order{}
	for p := dynamodb.NewQueryPaginator(s.client, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("orders: query the tenant's orders: %w", err)
		}
		for _, item := range page.Items {
			o, err := unmarshalOrder(item)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	// The sort key is a random ID; the interface promises oldest first.
	slices.SortStableFunc(out, func(a, b Order) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// orderKey is the key of a tenant's order.
func orderKey(tenantID, orderID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrTenant: str(tenantID), attrOrder: str(orderID)}
}

func marshalOrder(o Order) map[string]types.AttributeValue {
	item := orderKey(o.TenantID, o.ID)
	item[attrUser] = str(o.UserID)
	item[attrItem] = str(o.Item)
	item[attrQuantity] = num(int64(o.Quantity))
	item[attrCreatedAt] = str(o.CreatedAt.Format(time.RFC3339Nano))
	if o.UnitPriceCents != nil {
		item[attrPrice] = num(*o.UnitPriceCents)
	}
	return item
}

// unmarshalOrder reads an item the store wrote.
func unmarshalOrder(item map[string]types.AttributeValue) (Order, error) {
	var errs []error
	getS := func(name string) string {
		v, ok := item[name].(*types.AttributeValueMemberS)
		if !ok {
			errs = append(errs, fmt.Errorf("no string %s", name))
			return ""
		}
		return v.Value
	}
	getN := func(name string) int64 {
		v, ok := item[name].(*types.AttributeValueMemberN)
		if !ok {
			errs = append(errs, fmt.Errorf("no number %s", name))
			return 0
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s is not a whole number", name))
		}
		return n
	}
	o := Order{
		TenantID: getS(attrTenant),
		ID:       getS(attrOrder),
		UserID:   getS(attrUser),
		Item:     getS(attrItem),
		Quantity: int(getN(attrQuantity)),
	}
	created, err := time.Parse(time.RFC3339Nano, getS(attrCreatedAt))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s is not a time", attrCreatedAt))
	}
	o.CreatedAt = created
	if _, ok := item[attrPrice]; ok {
		p := getN(attrPrice)
		o.UnitPriceCents = &p
	}
	if err := errors.Join(errs...); err != nil {
		return Order{}, fmt.Errorf("orders: an item of the table is not an order: %w", err)
	}
	return o, nil
}
