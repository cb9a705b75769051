package awscreds

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/tenancykit/tenancy/tenant"
)

// Errors a [GuardError] wraps, to tell refusals apart with [errors.Is].
var (
	// ErrCrossTenant: a key or item of the request belongs to another
	// tenant than the one in the request's context.
	ErrCrossTenant = errors.New("awscreds: request touches another tenant's items")
	// ErrNoTenant: the context carries no tenant ([tenant.FromContext]), so
	// there is no one to check a request's keys against (or to scope
	// credentials to).
	ErrNoTenant = errors.New("awscreds: no tenant in context")
	// ErrUncheckable: the request is of a kind whose keys the guard cannot
	// verify: a Scan without [WithScan], a PartiQL statement without
	// [WithPartiQL], a Query whose key condition does not fix the partition
	// key, a missing key attribute or a key value that is not a string.
	ErrUncheckable = errors.New("awscreds: request cannot be checked for its tenant")
)

// GuardError is the error of a request the [Guard] refused. Through a
// DynamoDB client it comes wrapped in the SDK's operation error: find it with
// [errors.As].
//
// A GuardError names the operation, the table and the key attribute, never a
// key value: a value the guard refused may be another tenant's ID, which
// must not reach a log.
type GuardError struct {
	// Operation is the DynamoDB operation, such as "GetItem".
	Operation string
	// Table is the table as the request named it (a name or an ARN); empty
	// for operations without one.
	Table string
	// Reason says what was wrong, for people.
	Reason string
	// Err is ErrCrossTenant, ErrNoTenant or ErrUncheckable.
	Err error
}

func (e *GuardError) Error() string {
	var b strings.Builder
	b.WriteString("awscreds: dynamodb ")
	b.WriteString(e.Operation)
	if e.Table != "" {
		fmt.Fprintf(&b, " on table %q", e.Table)
	}
	b.WriteString(" refused: ")
	if e.Reason != "" {
		b.WriteString(e.Reason)
	} else if e.Err != nil {
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "awscreds: "))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *GuardError) Unwrap() error { return e.Err }

// Guard refuses DynamoDB requests that would touch another tenant's items:
// added to a client with [Guard.Options], it checks every request before it
// is signed or sent, and compares the partition key of each key, item and
// query with the tenant in the request's context ([tenant.FromContext]).
//
// It inspects GetItem, PutItem, UpdateItem, DeleteItem, Query (key condition
// expressions and the legacy KeyConditions), BatchGetItem, BatchWriteItem,
// TransactGetItems and TransactWriteItems: every key must hold the tenant's
// ID (after an optional prefix, see [WithKeyPrefix]) as a string in the
// partition key attribute, or the whole request is refused. Scan and
// SearchVectors read across partitions and are refused unless [WithScan]
// allows them (SearchVectors also passes when its search condition fixes the
// partition key to the tenant); PartiQL cannot be checked and is refused
// unless [WithPartiQL] allows it. Other operations (table management,
// backups, imports and exports) pass.
//
// The guard is a second line of defence against a bug in the service's own
// code, not a security boundary: code that builds its own client, or removes
// the middleware with per-call options, goes around it. The boundary is the
// tenant-scoped credentials, whose policy limits dynamodb:LeadingKeys.
//
// A Guard is immutable and safe for concurrent use; one Guard serves any
// number of clients.
type Guard struct {
	partitionKey string
	prefix       string
	tables       map[string]guardTable // by table name, never an ARN
	allowScan    bool
	allowPartiQL bool
	onRefuse     func(context.Context, *GuardError)
	// initialize is the middleware, made once: the SDK builds a new stack
	// for every call.
	initialize middleware.InitializeMiddleware
}

// guardTable is what the options set for one table.
type guardTable struct {
	partitionKey string // "" for the default
	prefix       string
	hasPrefix    bool // prefix is set, even to ""
}

// GuardOption configures a [Guard]; see [NewGuard].
type GuardOption func(*guardConfig)

// guardConfig collects the options; NewGuard checks it. Options record
// their mistakes in errs, so that NewGuard reports all of them.
type guardConfig struct {
	prefix       string
	tables       map[string]guardTable
	allowScan    bool
	allowPartiQL bool
	onRefuse     func(context.Context, *GuardError)
	errs         []error
}

// WithTable sets the partition key attribute of one table, named by its name
// or its ARN, in place of the default given to [NewGuard]. Requests that name
// the table either way match.
func WithTable(table, partitionKey string) GuardOption {
	return func(c *guardConfig) {
		name, err := guardOptionTable("WithTable", table)
		if err != nil {
			c.errs = append(c.errs, err)
			return
		}
		if partitionKey == "" {
			c.errs = append(c.errs, fmt.Errorf("awscreds: WithTable(%q): empty partition key attribute", table))
			return
		}
		t := c.tables[name]
		if t.partitionKey != "" && t.partitionKey != partitionKey {
			c.errs = append(c.errs, fmt.Errorf("awscreds: WithTable(%q): partition key set twice, to %q and %q", table, t.partitionKey, partitionKey))
			return
		}
		t.partitionKey = partitionKey
		c.setTable(name, t)
	}
}

// WithKeyPrefix sets what comes before the tenant ID in every partition key
// value, such as "TENANT#" for keys like "TENANT#acme". The default is "":
// the value is the tenant ID itself.
func WithKeyPrefix(prefix string) GuardOption {
	return func(c *guardConfig) { c.prefix = prefix }
}

// WithTableKeyPrefix sets the key prefix of one table (named by its name or
// ARN) in place of the one of [WithKeyPrefix]; "" means the table's keys are
// bare tenant IDs.
func WithTableKeyPrefix(table, prefix string) GuardOption {
	return func(c *guardConfig) {
		name, err := guardOptionTable("WithTableKeyPrefix", table)
		if err != nil {
			c.errs = append(c.errs, err)
			return
		}
		t := c.tables[name]
		if t.hasPrefix && t.prefix != prefix {
			c.errs = append(c.errs, fmt.Errorf("awscreds: WithTableKeyPrefix(%q): prefix set twice, to %q and %q", table, t.prefix, prefix))
			return
		}
		t.prefix, t.hasPrefix = prefix, true
		c.setTable(name, t)
	}
}

// WithScan lets Scan requests (parallel ones too) and SearchVectors requests
// through, for every table. By default they are refused with
// [ErrUncheckable], since they read every tenant's items. Allowed scans pass
// whether or not the context carries a tenant.
func WithScan() GuardOption {
	return func(c *guardConfig) { c.allowScan = true }
}

// WithPartiQL lets ExecuteStatement, BatchExecuteStatement and
// ExecuteTransaction through. By default they are refused with
// [ErrUncheckable]: the guard does not read PartiQL. Allowed statements pass
// whether or not the context carries a tenant.
func WithPartiQL() GuardOption {
	return func(c *guardConfig) { c.allowPartiQL = true }
}

// WithOnRefuse sets a function that the middleware calls, once, with each
// request it refuses, before it returns the error: to write an audit event
// or count refusals. It runs on the caller's goroutine and must not keep
// the request waiting. The default is none; nil means none.
func WithOnRefuse(f func(ctx context.Context, err *GuardError)) GuardOption {
	return func(c *guardConfig) { c.onRefuse = f }
}

func (c *guardConfig) setTable(name string, t guardTable) {
	if c.tables == nil {
		c.tables = make(map[string]guardTable)
	}
	c.tables[name] = t
}

// guardOptionTable returns the table name an option names, by name or ARN.
func guardOptionTable(option, table string) (string, error) {
	if table == "" {
		return "", fmt.Errorf("awscreds: %s: empty table name", option)
	}
	name := guardTableName(table)
	if name == "" {
		return "", fmt.Errorf("awscreds: %s(%q): not a DynamoDB table ARN (arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME)", option, table)
	}
	return name, nil
}

// NewGuard returns a [Guard] that checks partitionKey, the name of the
// partition key attribute, in every table ([WithTable] sets it for one
// table). It returns an error when partitionKey is empty or an option is
// wrong, such as a table set twice to different attributes.
func NewGuard(partitionKey string, opts ...GuardOption) (*Guard, error) {
	var c guardConfig
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if partitionKey == "" {
		c.errs = append(c.errs, errors.New("awscreds: NewGuard: empty partition key attribute"))
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	g := &Guard{
		partitionKey: partitionKey,
		prefix:       c.prefix,
		tables:       c.tables,
		allowScan:    c.allowScan,
		allowPartiQL: c.allowPartiQL,
		onRefuse:     c.onRefuse,
	}
	g.initialize = middleware.InitializeMiddlewareFunc(guardMiddlewareID, g.handleInitialize)
	return g, nil
}

// guardMiddlewareID names the guard in a client's middleware stack.
const guardMiddlewareID = "TenancyDynamoDBGuard"

// Options returns a client option that installs the guard, first in the
// Initialize step of every operation: a refused request is never validated,
// signed, retried or sent. Pass it when building the client:
//
//	client := dynamodb.NewFromConfig(cfg, guard.Options())
//
// A refused call returns the SDK's operation error wrapping a [*GuardError]
// and calls the [WithOnRefuse] hook. Guards installed on one client (the
// same twice, or two) all check each request, and the first to refuse
// stops it.
func (g *Guard) Options() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, g.addMiddleware)
	}
}

func (g *Guard) addMiddleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(g.initialize, middleware.Before)
}

func (g *Guard) handleInitialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	if err := g.check(ctx, in.Parameters); err != nil {
		if g.onRefuse != nil {
			g.onRefuse(ctx, err)
		}
		return middleware.InitializeOutput{}, middleware.Metadata{}, err
	}
	return next.HandleInitialize(ctx, in)
}

// Check reports whether the guard lets input, the input of a DynamoDB
// operation (such as a *dynamodb.GetItemInput), through for the tenant in
// ctx: nil, or a [*GuardError]. It is the check the middleware makes, for
// code that does not go through a client; it does not call the
// [WithOnRefuse] hook. Inputs of other types pass.
func (g *Guard) Check(ctx context.Context, input any) error {
	if err := g.check(ctx, input); err != nil {
		return err
	}
	return nil
}

// item checks an operation on one item of one table.
func (g *Guard) item(ctx context.Context, op string, table *string, key map[string]types.AttributeValue) *GuardError {
	c, err := g.begin(ctx, op)
	if err != nil {
		return err
	}
	c.key(guardDeref(table), key)
	return c.err
}

func (g *Guard) check(ctx context.Context, input any) *GuardError {
	switch in := input.(type) {
	case *dynamodb.GetItemInput:
		if in == nil {
			return g.item(ctx, "GetItem", nil, nil)
		}
		return g.item(ctx, "GetItem", in.TableName, in.Key)
	case *dynamodb.PutItemInput:
		if in == nil {
			return g.item(ctx, "PutItem", nil, nil)
		}
		return g.item(ctx, "PutItem", in.TableName, in.Item)
	case *dynamodb.UpdateItemInput:
		if in == nil {
			return g.item(ctx, "UpdateItem", nil, nil)
		}
		return g.item(ctx, "UpdateItem", in.TableName, in.Key)
	case *dynamodb.DeleteItemInput:
		if in == nil {
			return g.item(ctx, "DeleteItem", nil, nil)
		}
		return g.item(ctx, "DeleteItem", in.TableName, in.Key)
	case *dynamodb.QueryInput:
		c, err := g.begin(ctx, "Query")
		if err != nil {
			return err
		}
		if in == nil {
			in = &dynamodb.QueryInput{}
		}
		c.query(in)
		return c.err
	case *dynamodb.BatchGetItemInput:
		c, err := g.begin(ctx, "BatchGetItem")
		if err != nil {
			return err
		}
		if in == nil {
			return nil
		}
		for table, ka := range in.RequestItems {
			for _, key := range ka.Keys {
				if !c.key(table, key) {
					return c.err
				}
			}
		}
		return c.err
	case *dynamodb.BatchWriteItemInput:
		c, err := g.begin(ctx, "BatchWriteItem")
		if err != nil {
			return err
		}
		if in == nil {
			return nil
		}
		for table, requests := range in.RequestItems {
			for _, r := range requests {
				// A request with neither part touches nothing, and
				// DynamoDB refuses it.
				if r.PutRequest != nil && !c.key(table, r.PutRequest.Item) {
					return c.err
				}
				if r.DeleteRequest != nil && !c.key(table, r.DeleteRequest.Key) {
					return c.err
				}
			}
		}
		return c.err
	case *dynamodb.TransactGetItemsInput:
		c, err := g.begin(ctx, "TransactGetItems")
		if err != nil {
			return err
		}
		if in == nil {
			return nil
		}
		for _, item := range in.TransactItems {
			if item.Get != nil && !c.key(guardDeref(item.Get.TableName), item.Get.Key) {
				return c.err
			}
		}
		return c.err
	case *dynamodb.TransactWriteItemsInput:
		c, err := g.begin(ctx, "TransactWriteItems")
		if err != nil {
			return err
		}
		if in == nil {
			return nil
		}
		for _, item := range in.TransactItems {
			ok := true
			switch {
			case item.ConditionCheck != nil:
				ok = c.key(guardDeref(item.ConditionCheck.TableName), item.ConditionCheck.Key)
			case item.Put != nil:
				ok = c.key(guardDeref(item.Put.TableName), item.Put.Item)
			case item.Delete != nil:
				ok = c.key(guardDeref(item.Delete.TableName), item.Delete.Key)
			case item.Update != nil:
				ok = c.key(guardDeref(item.Update.TableName), item.Update.Key)
			}
			if !ok {
				return c.err
			}
		}
		return c.err
	case *dynamodb.ScanInput:
		if g.allowScan {
			return nil
		}
		var table *string
		if in != nil {
			table = in.TableName
		}
		return &GuardError{Operation: "Scan", Table: guardDeref(table), Reason: "Scan reads every tenant's items (allow it with WithScan)", Err: ErrUncheckable}
	case *dynamodb.SearchVectorsInput:
		if g.allowScan {
			return nil
		}
		c, err := g.begin(ctx, "SearchVectors")
		if err != nil {
			return err
		}
		if in == nil {
			in = &dynamodb.SearchVectorsInput{}
		}
		c.condition(in.TableName, in.SearchConditionExpression, "search condition", in.ExpressionAttributeNames, in.ExpressionAttributeValues)
		return c.err
	case *dynamodb.ExecuteStatementInput:
		return g.partiQL("ExecuteStatement")
	case *dynamodb.BatchExecuteStatementInput:
		return g.partiQL("BatchExecuteStatement")
	case *dynamodb.ExecuteTransactionInput:
		return g.partiQL("ExecuteTransaction")
	}
	return nil
}

func (g *Guard) partiQL(op string) *GuardError {
	if g.allowPartiQL {
		return nil
	}
	return &GuardError{Operation: op, Reason: "PartiQL statements cannot be checked (allow them with WithPartiQL)", Err: ErrUncheckable}
}

// begin starts the check of one request of an operation that must carry a
// tenant.
func (g *Guard) begin(ctx context.Context, op string) (guardCheck, *GuardError) {
	t, ok := tenant.FromContext(ctx)
	if !ok || t.ID == "" {
		return guardCheck{}, &GuardError{Operation: op, Reason: "no tenant in context", Err: ErrNoTenant}
	}
	return guardCheck{g: g, op: op, tenantID: t.ID}, nil
}

// table returns the partition key attribute and the key prefix of table,
// named by its name or ARN.
func (g *Guard) table(table string) (partitionKey, prefix string) {
	partitionKey, prefix = g.partitionKey, g.prefix
	if g.tables == nil {
		return partitionKey, prefix
	}
	if t, ok := g.tables[guardTableName(table)]; ok {
		if t.partitionKey != "" {
			partitionKey = t.partitionKey
		}
		if t.hasPrefix {
			prefix = t.prefix
		}
	}
	return partitionKey, prefix
}

// guardTableName returns the name of a table given by name or ARN
// (arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME, possibly followed by
// /index/... or /stream/...), or "" for an ARN that names no table.
func guardTableName(table string) string {
	if !strings.HasPrefix(table, "arn:") {
		return table
	}
	// The resource is what follows the fifth colon.
	rest := table
	for range 5 {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			return ""
		}
		rest = rest[i+1:]
	}
	name, ok := strings.CutPrefix(rest, "table/")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	return name
}

func guardDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// guardCheck is the check of one request. It stops at the first key of
// another tenant; short of that it keeps the first key it could not verify,
// so that a request with both kinds of key is reported as cross-tenant,
// whatever the order of its keys.
type guardCheck struct {
	g        *Guard
	op       string
	tenantID string
	err      *GuardError // nil while the request passes
}

// key checks the partition key of a key or an item of table, and reports
// whether to go on (false after a key of another tenant).
func (c *guardCheck) key(name string, key map[string]types.AttributeValue) bool {
	attr, prefix := c.g.table(name)
	v, ok := key[attr]
	if !ok {
		c.uncheckable(name, "no partition key attribute "+strconv.Quote(attr))
		return true
	}
	return c.value(name, attr, prefix, v)
}

// value checks one partition key value.
func (c *guardCheck) value(table, attr, prefix string, v types.AttributeValue) bool {
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok || s == nil {
		c.uncheckable(table, "partition key "+strconv.Quote(attr)+" is not a string")
		return true
	}
	if len(s.Value) == len(prefix)+len(c.tenantID) && strings.HasPrefix(s.Value, prefix) && s.Value[len(prefix):] == c.tenantID {
		return true
	}
	c.err = &GuardError{Operation: c.op, Table: table, Reason: "partition key " + strconv.Quote(attr) + " is not the caller's tenant", Err: ErrCrossTenant}
	return false
}

func (c *guardCheck) uncheckable(table, reason string) {
	if c.err == nil {
		c.err = &GuardError{Operation: c.op, Table: table, Reason: reason, Err: ErrUncheckable}
	}
}

// query checks a Query's key condition, in either form; when both are given
// (DynamoDB refuses that), both must pass.
func (c *guardCheck) query(in *dynamodb.QueryInput) {
	name := guardDeref(in.TableName)
	if in.KeyConditionExpression == nil && len(in.KeyConditions) == 0 {
		c.uncheckable(name, "no key condition")
		return
	}
	if in.KeyConditionExpression != nil {
		if !c.condition(in.TableName, in.KeyConditionExpression, "key condition", in.ExpressionAttributeNames, in.ExpressionAttributeValues) {
			return
		}
	}
	if len(in.KeyConditions) > 0 {
		attr, prefix := c.g.table(name)
		cond, ok := in.KeyConditions[attr]
		switch {
		case !ok:
			c.uncheckable(name, "KeyConditions has no condition on partition key "+strconv.Quote(attr))
		case cond.ComparisonOperator != types.ComparisonOperatorEq || len(cond.AttributeValueList) != 1:
			c.uncheckable(name, "KeyConditions on partition key "+strconv.Quote(attr)+" is not one EQ value")
		default:
			c.value(name, attr, prefix, cond.AttributeValueList[0])
		}
	}
}

// condition checks a key condition expression (what names it, for the
// reasons): every equality on the partition key must hold the tenant's
// value, and there must be one. It reports whether to go on.
func (c *guardCheck) condition(table, expr *string, what string, names map[string]string, values map[string]types.AttributeValue) bool {
	name := guardDeref(table)
	attr, prefix := c.g.table(name)
	if expr == nil {
		c.uncheckable(name, "no "+what)
		return true
	}
	var buf [4]guardKeyEquality
	eqs, err := guardParseKeyCondition(*expr, buf[:0])
	if err != nil {
		c.uncheckable(name, what+": "+strings.TrimPrefix(err.Error(), "key condition: "))
		return true
	}
	found := false
	for _, eq := range eqs {
		n := eq.name
		if n[0] == '#' {
			var ok bool
			if n, ok = names[n]; !ok {
				c.uncheckable(name, what+" uses an undefined name placeholder")
				continue
			}
		}
		if n != attr {
			continue
		}
		v, ok := values[eq.value]
		if !ok {
			c.uncheckable(name, what+" uses an undefined value placeholder for partition key "+strconv.Quote(attr))
			continue
		}
		found = true
		if !c.value(name, attr, prefix, v) {
			return false
		}
	}
	if !found {
		c.uncheckable(name, what+" has no equality on partition key "+strconv.Quote(attr))
	}
	return true
}
