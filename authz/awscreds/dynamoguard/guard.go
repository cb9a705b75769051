package dynamoguard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/tenancykit/tenancy/tenant"
)

// Errors an [Error] wraps, to tell refusals apart with [errors.Is]. The
// third is [tenant.ErrNoTenant], the module's one error for a missing
// tenant: the context carries no tenant ([tenant.FromContext]), or only one
// the request claimed for itself ([tenant.SourceClaimed]), so there is no
// one to check a request's keys against.
var (
	// ErrCrossTenant: a key or item of the request belongs to another
	// tenant than the one in the request's context.
	ErrCrossTenant = errors.New("dynamoguard: request touches another tenant's items")
	// ErrUncheckable: the request is of a kind whose keys the guard cannot
	// verify: a table it was not told about ([WithTable]), an input it does
	// not know (or one passed by value), a Scan without [WithScan], a
	// PartiQL statement without [WithPartiQL], a Query whose key condition
	// does not fix the partition key, a missing key attribute or a key
	// value that is not a string.
	ErrUncheckable = errors.New("dynamoguard: request cannot be checked for its tenant")
)

// Error is the error of a request the [Guard] refused. Through a
// DynamoDB client it comes wrapped in the SDK's operation error: find it with
// [errors.As].
//
// An Error names the operation, the table and the key attribute, never a
// key value: a value the guard refused may be another tenant's ID, which
// must not reach a log.
type Error struct {
	// Operation is the DynamoDB operation, such as "GetItem".
	Operation string
	// Table is the table as the request named it (a name or an ARN); empty
	// for operations without one.
	Table string
	// Reason says what was wrong, for people.
	Reason string
	// Err is ErrCrossTenant, [tenant.ErrNoTenant] or ErrUncheckable.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dynamoguard: dynamodb ")
	b.WriteString(e.Operation)
	if e.Table != "" {
		fmt.Fprintf(&b, " on table %q", e.Table)
	}
	b.WriteString(" refused: ")
	if e.Reason != "" {
		b.WriteString(e.Reason)
	} else if e.Err != nil {
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "dynamoguard: "))
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Guard refuses DynamoDB requests that would touch another tenant's items:
// added to a client with [Guard.Options], it checks every request before it
// is signed or sent, and compares the partition key of each key, item and
// query with the tenant in the request's context ([tenant.FromContext]).
//
// The guard knows the tables it was told about, and nothing else: each
// table a client uses is named with its partition key attribute by
// [WithTable], or let through unchecked by [WithUnguardedTable]. A request
// on any other table is refused with [ErrUncheckable]: a table keyed by
// something else (an "id", with the tenant as a plain attribute) cannot be
// checked by reading its items' tenant attribute, which the request sets
// itself.
//
// It inspects GetItem, PutItem, UpdateItem, DeleteItem, Query (key condition
// expressions and the legacy KeyConditions), BatchGetItem, BatchWriteItem
// (both parts of every write request), TransactGetItems and
// TransactWriteItems (every part of every item): every key must hold the
// tenant's ID (after an optional prefix, see [WithKeyPrefix]) as a string in
// the partition key attribute, or the whole request is refused. Scan and
// SearchVectors read across partitions and are refused unless [WithScan]
// allows them (SearchVectors also passes when its search condition fixes the
// partition key to the tenant); PartiQL cannot be checked and is refused
// unless [WithPartiQL] allows it. Operations on tables rather than items
// (creating, describing, listing, updating and deleting tables, backups and
// restores, imports and exports, tags, resource policies, streaming and
// settings) pass. Anything else is refused with [ErrUncheckable]: an input
// the guard does not know, whether an operation added to DynamoDB after
// this guard was written (such as StartBulkPutItems, which writes items
// from S3) or an input passed to [Guard.Check] by value.
//
// A tenant that the request only claimed for itself
// ([tenant.SourceClaimed], such as one read from the Host header) counts as
// no tenant, unless [WithClaimedTenants] says otherwise.
//
// The guard is a second line of defence against a bug in the service's own
// code, not a security boundary: code that builds its own client, or removes
// the middleware with per-call options, goes around it. The boundary is the
// tenant-scoped credentials, whose policy limits dynamodb:LeadingKeys.
//
// A Guard is immutable and safe for concurrent use; one Guard serves any
// number of clients.
type Guard struct {
	tables       map[string]*guardTable // by table name, never an ARN
	allowScan    bool
	allowPartiQL bool
	allowClaimed bool
	onRefuse     func(context.Context, *Error)
	// initialize is the middleware, made once: the SDK builds a new stack
	// for every call.
	initialize middleware.InitializeMiddleware
}

// guardTable is what the options set for one table.
type guardTable struct {
	partitionKey string // "" for an unguarded table
	prefix       string
	hasPrefix    bool // prefix is set, even to ""
	unguarded    bool
}

// Option configures a [Guard]; see [New].
type Option func(*config)

// config collects the options; New checks it. Options record
// their mistakes in errs, so that New reports all of them.
type config struct {
	prefix       string
	tables       map[string]guardTable
	allowScan    bool
	allowPartiQL bool
	allowClaimed bool
	onRefuse     func(context.Context, *Error)
	errs         []error
}

// WithTable names a table the guard checks, by its name or its ARN, and
// its partition key attribute: every key, item and key condition of a
// request on the table must hold the tenant's ID in that attribute.
// Requests that name the table either way match. A table named by no
// WithTable or [WithUnguardedTable] is refused.
func WithTable(table, partitionKey string) Option {
	return func(c *config) {
		name, err := guardOptionTable("WithTable", table)
		if err != nil {
			c.errs = append(c.errs, err)
			return
		}
		if partitionKey == "" {
			c.errs = append(c.errs, fmt.Errorf("dynamoguard: WithTable(%q): empty partition key attribute", table))
			return
		}
		t := c.tables[name]
		if t.partitionKey != "" && t.partitionKey != partitionKey {
			c.errs = append(c.errs, fmt.Errorf("dynamoguard: WithTable(%q): partition key set twice, to %q and %q", table, t.partitionKey, partitionKey))
			return
		}
		t.partitionKey = partitionKey
		c.setTable(name, t)
	}
}

// WithUnguardedTable names a table, by its name or ARN, whose requests the
// guard lets through without reading them, with or without a tenant, Scan
// included: a table that holds no tenant's items, such as feature flags or
// a catalogue shared by all. Every other table must be named by
// [WithTable].
func WithUnguardedTable(table string) Option {
	return func(c *config) {
		name, err := guardOptionTable("WithUnguardedTable", table)
		if err != nil {
			c.errs = append(c.errs, err)
			return
		}
		t := c.tables[name]
		t.unguarded = true
		c.setTable(name, t)
	}
}

// WithKeyPrefix sets what comes before the tenant ID in every partition key
// value, such as "TENANT#" for keys like "TENANT#acme", in every table of
// [WithTable]. The default is "": the value is the tenant ID itself.
func WithKeyPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithTableKeyPrefix sets the key prefix of one table of [WithTable] (named
// by its name or ARN) in place of the one of [WithKeyPrefix]; "" means the
// table's keys are bare tenant IDs.
func WithTableKeyPrefix(table, prefix string) Option {
	return func(c *config) {
		name, err := guardOptionTable("WithTableKeyPrefix", table)
		if err != nil {
			c.errs = append(c.errs, err)
			return
		}
		t := c.tables[name]
		if t.hasPrefix && t.prefix != prefix {
			c.errs = append(c.errs, fmt.Errorf("dynamoguard: WithTableKeyPrefix(%q): prefix set twice, to %q and %q", table, t.prefix, prefix))
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
func WithScan() Option {
	return func(c *config) { c.allowScan = true }
}

// WithPartiQL lets ExecuteStatement, BatchExecuteStatement and
// ExecuteTransaction through. By default they are refused with
// [ErrUncheckable]: the guard does not read PartiQL. Allowed statements pass
// whether or not the context carries a tenant.
func WithPartiQL() Option {
	return func(c *config) { c.allowPartiQL = true }
}

// WithClaimedTenants lets the guard check requests against a tenant that
// the request only claimed for itself ([tenant.SourceClaimed]: its Host or
// path, verified by no one) as against a verified one. By default such a
// request is refused with [tenant.ErrNoTenant]: anyone can claim any tenant, and
// the guard would pass the claimed tenant's keys. Use it only where every
// request that names a tenant may read and write its items.
func WithClaimedTenants() Option {
	return func(c *config) { c.allowClaimed = true }
}

// WithOnRefuse sets a function that the middleware calls, once, with each
// request it refuses, before it returns the error: to write an audit event
// or count refusals. It runs on the caller's goroutine and must not keep
// the request waiting. The default is none; nil means none.
func WithOnRefuse(f func(ctx context.Context, err *Error)) Option {
	return func(c *config) { c.onRefuse = f }
}

func (c *config) setTable(name string, t guardTable) {
	if c.tables == nil {
		c.tables = make(map[string]guardTable)
	}
	c.tables[name] = t
}

// guardOptionTable returns the table name an option names, by name or ARN.
func guardOptionTable(option, table string) (string, error) {
	if table == "" {
		return "", fmt.Errorf("dynamoguard: %s: empty table name", option)
	}
	name := guardTableName(table)
	if name == "" {
		return "", fmt.Errorf("dynamoguard: %s(%q): not a DynamoDB table ARN (arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME)", option, table)
	}
	return name, nil
}

// New returns a [Guard] for the tables that [WithTable] names with
// their partition key attributes, and those [WithUnguardedTable] lets
// through; there must be at least one. There is no default partition key:
// a table the guard was not told about is refused, so that a table keyed
// by something else never passes on an attribute its items merely carry.
// New returns an error when no table is named or an option is wrong,
// such as a table set twice to different attributes, a table both guarded
// and unguarded, or a key prefix for a table WithTable does not name.
func New(opts ...Option) (*Guard, error) {
	var c config
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if len(c.tables) == 0 {
		c.errs = append(c.errs, errors.New("dynamoguard: New: no table; name each table the client uses with WithTable(table, partitionKey), or WithUnguardedTable(table)"))
	}
	tables := make(map[string]*guardTable, len(c.tables))
	for _, name := range slices.Sorted(maps.Keys(c.tables)) { // errors in a stable order
		t := c.tables[name]
		switch {
		case t.unguarded && (t.partitionKey != "" || t.hasPrefix):
			c.errs = append(c.errs, fmt.Errorf("dynamoguard: table %q is both unguarded (WithUnguardedTable) and guarded (WithTable, WithTableKeyPrefix)", name))
		case !t.unguarded && t.partitionKey == "":
			c.errs = append(c.errs, fmt.Errorf("dynamoguard: WithTableKeyPrefix(%q): the table has no partition key; name it with WithTable", name))
		case !t.unguarded && !t.hasPrefix:
			t.prefix = c.prefix
		}
		tables[name] = &t
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	g := &Guard{
		tables:       tables,
		allowScan:    c.allowScan,
		allowPartiQL: c.allowPartiQL,
		allowClaimed: c.allowClaimed,
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
// A refused call returns the SDK's operation error wrapping a [*Error]
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
// ctx: nil, or a [*Error]. It is the check the middleware makes, for
// code that does not go through a client; it does not call the
// [WithOnRefuse] hook. Inputs are pointers, as the client's methods take
// them: an input passed by value, or of a type the guard does not know, is
// refused with [ErrUncheckable].
func (g *Guard) Check(ctx context.Context, input any) error {
	if err := g.check(ctx, input); err != nil {
		return err
	}
	return nil
}

// item checks an operation on one item of one table.
func (g *Guard) item(ctx context.Context, op string, table *string, key map[string]types.AttributeValue) *Error {
	c := g.begin(ctx, op)
	c.key(guardDeref(table), key)
	return c.err
}

func (g *Guard) check(ctx context.Context, input any) *Error {
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
		c := g.begin(ctx, "Query")
		if in == nil {
			in = &dynamodb.QueryInput{}
		}
		name := guardDeref(in.TableName)
		if t, ok := c.table(name); ok {
			c.query(name, t, in)
		}
		return c.err
	case *dynamodb.BatchGetItemInput:
		c := g.begin(ctx, "BatchGetItem")
		if in == nil {
			return nil
		}
		for table, ka := range in.RequestItems {
			t, ok := c.table(table)
			if !ok {
				if c.stop {
					return c.err
				}
				continue
			}
			for _, key := range ka.Keys {
				if !c.tableKey(table, t, key) {
					return c.err
				}
			}
		}
		return c.err
	case *dynamodb.BatchWriteItemInput:
		c := g.begin(ctx, "BatchWriteItem")
		if in == nil {
			return nil
		}
		for table, requests := range in.RequestItems {
			t, ok := c.table(table)
			if !ok {
				if c.stop {
					return c.err
				}
				continue
			}
			for _, r := range requests {
				// Both parts are checked: DynamoDB refuses a request with
				// both, but only after the guard has let it go. One with
				// neither touches nothing, and DynamoDB refuses it.
				if r.PutRequest != nil && !c.tableKey(table, t, r.PutRequest.Item) {
					return c.err
				}
				if r.DeleteRequest != nil && !c.tableKey(table, t, r.DeleteRequest.Key) {
					return c.err
				}
			}
		}
		return c.err
	case *dynamodb.TransactGetItemsInput:
		c := g.begin(ctx, "TransactGetItems")
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
		c := g.begin(ctx, "TransactWriteItems")
		if in == nil {
			return nil
		}
		// Every part of every item: DynamoDB refuses an item with more than
		// one, but a guard that read only the first would pass the rest.
		for _, item := range in.TransactItems {
			if item.ConditionCheck != nil && !c.key(guardDeref(item.ConditionCheck.TableName), item.ConditionCheck.Key) {
				return c.err
			}
			if item.Put != nil && !c.key(guardDeref(item.Put.TableName), item.Put.Item) {
				return c.err
			}
			if item.Delete != nil && !c.key(guardDeref(item.Delete.TableName), item.Delete.Key) {
				return c.err
			}
			if item.Update != nil && !c.key(guardDeref(item.Update.TableName), item.Update.Key) {
				return c.err
			}
		}
		return c.err
	case *dynamodb.ScanInput:
		var table *string
		if in != nil {
			table = in.TableName
		}
		if g.allowScan || g.unguarded(guardDeref(table)) {
			return nil
		}
		return &Error{Operation: "Scan", Table: guardDeref(table), Reason: "Scan reads every tenant's items (allow it with WithScan)", Err: ErrUncheckable}
	case *dynamodb.SearchVectorsInput:
		if in == nil {
			in = &dynamodb.SearchVectorsInput{}
		}
		name := guardDeref(in.TableName)
		if g.allowScan || g.unguarded(name) {
			return nil
		}
		c := g.begin(ctx, "SearchVectors")
		if t, ok := c.table(name); ok {
			c.condition(name, t, in.SearchConditionExpression, "search condition", in.ExpressionAttributeNames, in.ExpressionAttributeValues)
		}
		return c.err
	case *dynamodb.ExecuteStatementInput:
		return g.partiQL("ExecuteStatement")
	case *dynamodb.BatchExecuteStatementInput:
		return g.partiQL("BatchExecuteStatement")
	case *dynamodb.ExecuteTransactionInput:
		return g.partiQL("ExecuteTransaction")
	}
	if guardTableOperation(input) {
		return nil
	}
	op := middleware.GetOperationName(ctx)
	if op == "" {
		op = fmt.Sprintf("%T", input)
	}
	return &Error{Operation: op, Reason: fmt.Sprintf("the guard does not check inputs of type %T (an operation on items it cannot read, or an input passed by value, not as a pointer)", input), Err: ErrUncheckable}
}

func (g *Guard) partiQL(op string) *Error {
	if g.allowPartiQL {
		return nil
	}
	return &Error{Operation: op, Reason: "PartiQL statements cannot be checked (allow them with WithPartiQL)", Err: ErrUncheckable}
}

// unguarded reports whether table is one of WithUnguardedTable.
func (g *Guard) unguarded(table string) bool {
	t := g.tables[guardTableName(table)]
	return t != nil && t.unguarded
}

// Reasons of refusals that do not depend on the request.
const (
	guardNoTenant     = "no tenant in context"
	guardClaimed      = "the tenant was claimed by the request, not verified (allow claimed tenants with WithClaimedTenants)"
	guardUnknownTable = "the guard was not told about this table (name it with WithTable, or let it through unchecked with WithUnguardedTable)"
)

// begin starts the check of one request: it finds the tenant in ctx, which
// a table of WithTable will need.
func (g *Guard) begin(ctx context.Context, op string) guardCheck {
	c := guardCheck{g: g, op: op}
	t, ok := tenant.FromContext(ctx)
	switch {
	case !ok || t.ID == "":
		c.noTenant = guardNoTenant
	case !t.Source.Verified() && !g.allowClaimed:
		c.noTenant = guardClaimed
	default:
		c.tenantID = t.ID
	}
	return c
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
// another tenant, or the first guarded table when there is no tenant to
// check against; short of that it keeps the first key it could not verify,
// so that a request with both kinds of key is reported as cross-tenant,
// whatever the order of its keys.
type guardCheck struct {
	g        *Guard
	op       string
	tenantID string
	noTenant string // why there is no tenant to check against; "" when there is
	err      *Error // nil while the request passes
	stop     bool   // err is final
}

// table returns the settings of table, named by its name or ARN, and
// whether to check its keys: false for a table of WithUnguardedTable,
// and, with a refusal recorded, for a table the guard does not know or
// when there is no tenant.
func (c *guardCheck) table(name string) (*guardTable, bool) {
	t := c.g.tables[guardTableName(name)]
	switch {
	case t == nil:
		c.uncheckable(name, guardUnknownTable)
		return t, false
	case t.unguarded:
		return t, false
	case c.noTenant != "":
		if !c.stop {
			c.err, c.stop = &Error{Operation: c.op, Table: name, Reason: c.noTenant, Err: tenant.ErrNoTenant}, true
		}
		return t, false
	}
	return t, true
}

// key checks the partition key of a key or an item of table, and reports
// whether to go on (false once the refusal is final).
func (c *guardCheck) key(name string, key map[string]types.AttributeValue) bool {
	t, ok := c.table(name)
	if !ok {
		return !c.stop
	}
	return c.tableKey(name, t, key)
}

// tableKey checks the partition key of a key or an item of a table the
// guard checks, t, and reports whether to go on.
func (c *guardCheck) tableKey(name string, t *guardTable, key map[string]types.AttributeValue) bool {
	v, ok := key[t.partitionKey]
	if !ok {
		c.uncheckable(name, "no partition key attribute "+strconv.Quote(t.partitionKey))
		return true
	}
	return c.value(name, t, v)
}

// value checks one partition key value of table t, and reports whether to
// go on.
func (c *guardCheck) value(name string, t *guardTable, v types.AttributeValue) bool {
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok || s == nil {
		c.uncheckable(name, "partition key "+strconv.Quote(t.partitionKey)+" is not a string")
		return true
	}
	if len(s.Value) == len(t.prefix)+len(c.tenantID) && strings.HasPrefix(s.Value, t.prefix) && s.Value[len(t.prefix):] == c.tenantID {
		return true
	}
	c.err, c.stop = &Error{Operation: c.op, Table: name, Reason: "partition key " + strconv.Quote(t.partitionKey) + " is not the caller's tenant", Err: ErrCrossTenant}, true
	return false
}

func (c *guardCheck) uncheckable(table, reason string) {
	if c.err == nil {
		c.err = &Error{Operation: c.op, Table: table, Reason: reason, Err: ErrUncheckable}
	}
}

// query checks a Query's key condition on table t, in either form; when
// both are given (DynamoDB refuses that), both must pass.
func (c *guardCheck) query(name string, t *guardTable, in *dynamodb.QueryInput) {
	if in.KeyConditionExpression == nil && len(in.KeyConditions) == 0 {
		c.uncheckable(name, "no key condition")
		return
	}
	if in.KeyConditionExpression != nil {
		if !c.condition(name, t, in.KeyConditionExpression, "key condition", in.ExpressionAttributeNames, in.ExpressionAttributeValues) {
			return
		}
	}
	if len(in.KeyConditions) > 0 {
		attr := t.partitionKey
		cond, ok := in.KeyConditions[attr]
		switch {
		case !ok:
			c.uncheckable(name, "KeyConditions has no condition on partition key "+strconv.Quote(attr))
		case cond.ComparisonOperator != types.ComparisonOperatorEq || len(cond.AttributeValueList) != 1:
			c.uncheckable(name, "KeyConditions on partition key "+strconv.Quote(attr)+" is not one EQ value")
		default:
			c.value(name, t, cond.AttributeValueList[0])
		}
	}
}

// condition checks a key condition expression on table t (what names it,
// for the reasons): every equality on the partition key must hold the
// tenant's value, and there must be one. It reports whether to go on.
func (c *guardCheck) condition(name string, t *guardTable, expr *string, what string, names map[string]string, values map[string]types.AttributeValue) bool {
	attr := t.partitionKey
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
		if !c.value(name, t, v) {
			return false
		}
	}
	if !found {
		c.uncheckable(name, what+" has no equality on partition key "+strconv.Quote(attr))
	}
	return true
}
