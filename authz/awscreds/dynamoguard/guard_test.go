package dynamoguard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenancykit/tenancy/authz/awscreds/dynamoguard"
	"github.com/tenancykit/tenancy/tenant"
)

// The tenant the tests act for, and another one whose ID is distinctive
// enough that finding it in an error's text cannot be a coincidence.
const (
	guardOwn     = "acme"
	guardForeign = "GLOBEX-7f3a9c2e-LEAK"
	guardARN     = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"
)

func guardCtx(id string) context.Context {
	if id == "" {
		return context.Background()
	}
	return tenant.NewContext(context.Background(), tenant.Tenant{ID: id})
}

// guardClaimedCtx carries a tenant that the request named for itself, as
// tenant.Subdomain resolves it: verified by no one.
func guardClaimedCtx(id string) context.Context {
	return tenant.NewContext(context.Background(), tenant.Tenant{ID: id, Source: tenant.SourceClaimed})
}

// guardTables are the tables of most cases: orders and history, both
// keyed by tenant_id.
func guardTables() []dynamoguard.Option {
	return []dynamoguard.Option{dynamoguard.WithTable("orders", "tenant_id"), dynamoguard.WithTable("history", "tenant_id")}
}

func guardS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// guardKey returns a key of the orders table: tenant_id = pk, order_id = sk.
func guardKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"tenant_id": guardS(pk), "order_id": guardS(sk)}
}

func guardQuery(expr string, names map[string]string, values map[string]types.AttributeValue) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName:                 aws.String("orders"),
		KeyConditionExpression:    aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

type guardCase struct {
	name    string
	tables  []dynamoguard.Option // nil for guardTables
	opts    []dynamoguard.Option // added to the tables
	tenant  string               // "" for none
	claimed bool                 // the tenant is SourceClaimed
	input   any
	want    error // nil, or the sentinel the refusal wraps
}

func (tc guardCase) guard(t testing.TB, more ...dynamoguard.Option) *dynamoguard.Guard {
	t.Helper()
	opts := tc.tables
	if opts == nil {
		opts = guardTables()
	}
	g, err := dynamoguard.New(append(append(opts, tc.opts...), more...)...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (tc guardCase) ctx() context.Context {
	if tc.claimed {
		return guardClaimedCtx(tc.tenant)
	}
	return guardCtx(tc.tenant)
}

func guardCases() []guardCase {
	pkNames := map[string]string{"#pk": "tenant_id", "#sk": "order_id"}
	vals := func(pk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{":v": guardS(pk), ":a": guardS("1"), ":b": guardS("9"), ":p": guardS("2024-")}
	}
	prefixed := []dynamoguard.Option{dynamoguard.WithKeyPrefix("TENANT#")}
	var cases []guardCase
	add := func(c ...guardCase) { cases = append(cases, c...) }

	// One key: GetItem, PutItem, UpdateItem, DeleteItem.
	single := map[string]func(key map[string]types.AttributeValue) any{
		"GetItem": func(k map[string]types.AttributeValue) any {
			return &dynamodb.GetItemInput{TableName: aws.String("orders"), Key: k}
		},
		"PutItem": func(k map[string]types.AttributeValue) any {
			k["total"] = &types.AttributeValueMemberN{Value: "12"}
			return &dynamodb.PutItemInput{TableName: aws.String("orders"), Item: k}
		},
		"UpdateItem": func(k map[string]types.AttributeValue) any {
			return &dynamodb.UpdateItemInput{TableName: aws.String("orders"), Key: k, UpdateExpression: aws.String("SET #s = :s")}
		},
		"DeleteItem": func(k map[string]types.AttributeValue) any {
			return &dynamodb.DeleteItemInput{TableName: aws.String("orders"), Key: k}
		},
	}
	for _, op := range []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem"} {
		in := single[op]
		add(
			guardCase{name: op + "/own", tenant: guardOwn, input: in(guardKey(guardOwn, "o1"))},
			guardCase{name: op + "/foreign", tenant: guardOwn, input: in(guardKey(guardForeign, "o1")), want: dynamoguard.ErrCrossTenant},
			guardCase{name: op + "/no tenant", input: in(guardKey(guardOwn, "o1")), want: tenant.ErrNoTenant},
			guardCase{name: op + "/own tenant's ID as sort key only", tenant: guardOwn, input: in(guardKey(guardForeign, guardOwn)), want: dynamoguard.ErrCrossTenant},
			guardCase{name: op + "/prefix own", opts: prefixed, tenant: guardOwn, input: in(guardKey("TENANT#"+guardOwn, "o1"))},
			guardCase{name: op + "/prefix foreign", opts: prefixed, tenant: guardOwn, input: in(guardKey("TENANT#"+guardForeign, "o1")), want: dynamoguard.ErrCrossTenant},
		)
	}
	get := func(table string, key map[string]types.AttributeValue) *dynamodb.GetItemInput {
		return &dynamodb.GetItemInput{TableName: aws.String(table), Key: key}
	}
	add(
		guardCase{name: "GetItem/empty tenant ID in context", tenant: "", input: get("orders", guardKey("", "o1")), want: tenant.ErrNoTenant},
		guardCase{name: "GetItem/missing partition key", tenant: guardOwn, input: get("orders", map[string]types.AttributeValue{"order_id": guardS("o1")}), want: dynamoguard.ErrUncheckable},
		guardCase{name: "GetItem/nil key", tenant: guardOwn, input: get("orders", nil), want: dynamoguard.ErrUncheckable},
		guardCase{name: "GetItem/number key", tenant: guardOwn, input: get("orders", map[string]types.AttributeValue{"tenant_id": &types.AttributeValueMemberN{Value: "7"}}), want: dynamoguard.ErrUncheckable},
		guardCase{name: "GetItem/binary key", tenant: guardOwn, input: get("orders", map[string]types.AttributeValue{"tenant_id": &types.AttributeValueMemberB{Value: []byte(guardOwn)}}), want: dynamoguard.ErrUncheckable},
		guardCase{name: "GetItem/string set key", tenant: guardOwn, input: get("orders", map[string]types.AttributeValue{"tenant_id": &types.AttributeValueMemberSS{Value: []string{guardOwn}}}), want: dynamoguard.ErrUncheckable},
		guardCase{name: "GetItem/nil input", tenant: guardOwn, input: (*dynamodb.GetItemInput)(nil), want: dynamoguard.ErrUncheckable},
		guardCase{name: "GetItem/prefix missing", opts: prefixed, tenant: guardOwn, input: get("orders", guardKey(guardOwn, "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "GetItem/prefix longer ID", opts: prefixed, tenant: guardOwn, input: get("orders", guardKey("TENANT#"+guardOwn+"x", "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "GetItem/prefix shorter ID", opts: prefixed, tenant: guardOwn, input: get("orders", guardKey("TENANT#acm", "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "GetItem/prefix case", opts: prefixed, tenant: guardOwn, input: get("orders", guardKey("tenant#"+guardOwn, "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "GetItem/prefix only", opts: prefixed, tenant: guardOwn, input: get("orders", guardKey("TENANT#", "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "GetItem/ID case", tenant: guardOwn, input: get("orders", guardKey("ACME", "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "GetItem/empty key value", tenant: guardOwn, input: get("orders", guardKey("", "o1")), want: dynamoguard.ErrCrossTenant},

		// Per-table attribute and prefix, tables by name or ARN.
		guardCase{name: "WithTable/own", opts: []dynamoguard.Option{dynamoguard.WithTable("users", "org")}, tenant: guardOwn,
			input: get("users", map[string]types.AttributeValue{"org": guardS(guardOwn)})},
		guardCase{name: "WithTable/foreign", opts: []dynamoguard.Option{dynamoguard.WithTable("users", "org")}, tenant: guardOwn,
			input: get("users", map[string]types.AttributeValue{"org": guardS(guardForeign), "tenant_id": guardS(guardOwn)}), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "WithTable/another attribute does not count", opts: []dynamoguard.Option{dynamoguard.WithTable("users", "org")}, tenant: guardOwn,
			input: get("users", map[string]types.AttributeValue{"tenant_id": guardS(guardOwn)}), want: dynamoguard.ErrUncheckable},
		guardCase{name: "WithTable/other tables keep theirs", opts: []dynamoguard.Option{dynamoguard.WithTable("users", "org")}, tenant: guardOwn,
			input: get("orders", guardKey(guardOwn, "o1"))},
		guardCase{name: "WithTable/request by ARN", tables: []dynamoguard.Option{dynamoguard.WithTable("orders", "org")}, tenant: guardOwn,
			input: get(guardARN, map[string]types.AttributeValue{"org": guardS(guardForeign)}), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "WithTable/request by ARN own", tables: []dynamoguard.Option{dynamoguard.WithTable("orders", "org")}, tenant: guardOwn,
			input: get(guardARN, map[string]types.AttributeValue{"org": guardS(guardOwn)})},
		guardCase{name: "WithTable/option by ARN", tables: []dynamoguard.Option{dynamoguard.WithTable(guardARN, "org")}, tenant: guardOwn,
			input: get("orders", map[string]types.AttributeValue{"org": guardS(guardOwn)})},
		guardCase{name: "WithTable/option by ARN other partition", tables: []dynamoguard.Option{dynamoguard.WithTable("arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders", "org")}, tenant: guardOwn,
			input: get(guardARN, map[string]types.AttributeValue{"org": guardS(guardForeign)}), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "WithTableKeyPrefix/own", opts: []dynamoguard.Option{dynamoguard.WithTableKeyPrefix("orders", "T#")}, tenant: guardOwn,
			input: get("orders", guardKey("T#"+guardOwn, "o1"))},
		guardCase{name: "WithTableKeyPrefix/bare ID refused", opts: []dynamoguard.Option{dynamoguard.WithTableKeyPrefix("orders", "T#")}, tenant: guardOwn,
			input: get("orders", guardKey(guardOwn, "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "WithTableKeyPrefix/empty overrides default", opts: []dynamoguard.Option{dynamoguard.WithKeyPrefix("TENANT#"), dynamoguard.WithTableKeyPrefix(guardARN, "")}, tenant: guardOwn,
			input: get("orders", guardKey(guardOwn, "o1"))},
		guardCase{name: "WithTableKeyPrefix/other tables keep the default", opts: []dynamoguard.Option{dynamoguard.WithKeyPrefix("TENANT#"), dynamoguard.WithTableKeyPrefix("orders", "")}, tenant: guardOwn,
			input: get("history", guardKey(guardOwn, "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "WithTable and WithTableKeyPrefix", opts: []dynamoguard.Option{dynamoguard.WithTable("users", "org"), dynamoguard.WithTableKeyPrefix("users", "ORG#")}, tenant: guardOwn,
			input: get("users", map[string]types.AttributeValue{"org": guardS("ORG#" + guardOwn)})},
	)

	// Query.
	add(
		guardCase{name: "Query/placeholders own", tenant: guardOwn, input: guardQuery("#pk = :v", pkNames, vals(guardOwn))},
		guardCase{name: "Query/placeholders foreign", tenant: guardOwn, input: guardQuery("#pk = :v", pkNames, vals(guardForeign)), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/no tenant", input: guardQuery("#pk = :v", pkNames, vals(guardOwn)), want: tenant.ErrNoTenant},
		guardCase{name: "Query/direct name own", tenant: guardOwn, input: guardQuery("tenant_id = :v", nil, vals(guardOwn))},
		guardCase{name: "Query/direct name foreign", tenant: guardOwn, input: guardQuery("tenant_id = :v", nil, vals(guardForeign)), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/reversed own", tenant: guardOwn, input: guardQuery(":v = #pk", pkNames, vals(guardOwn))},
		guardCase{name: "Query/reversed foreign", tenant: guardOwn, input: guardQuery(":v = #pk", pkNames, vals(guardForeign)), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/begins_with own", tenant: guardOwn, input: guardQuery("#pk = :v AND begins_with(#sk, :p)", pkNames, vals(guardOwn))},
		guardCase{name: "Query/begins_with foreign", tenant: guardOwn, input: guardQuery("#pk = :v AND begins_with(#sk, :p)", pkNames, vals(guardForeign)), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/between first own", tenant: guardOwn, input: guardQuery("#sk BETWEEN :a AND :b AND #pk = :v", pkNames, vals(guardOwn))},
		guardCase{name: "Query/between first foreign", tenant: guardOwn, input: guardQuery("#sk between :a and :b and #pk = :v", pkNames, vals(guardForeign)), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/parentheses own", tenant: guardOwn, input: guardQuery("(#pk = :v) AND (#sk > :a)", pkNames, vals(guardOwn))},
		guardCase{name: "Query/parentheses foreign", tenant: guardOwn, input: guardQuery("((#pk = :v)) AND (#sk > :a)", pkNames, vals(guardForeign)), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/prefix own", opts: prefixed, tenant: guardOwn, input: guardQuery("#pk = :v", pkNames, vals("TENANT#"+guardOwn))},
		guardCase{name: "Query/prefix missing", opts: prefixed, tenant: guardOwn, input: guardQuery("#pk = :v", pkNames, vals(guardOwn)), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/index own", tenant: guardOwn, input: func() any {
			q := guardQuery("#pk = :v AND #sk > :a", pkNames, vals(guardOwn))
			q.IndexName = aws.String("by-date")
			return q
		}()},
		guardCase{name: "Query/equality on sort key only", tenant: guardOwn, input: guardQuery("#sk = :v", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/begins_with on partition key", tenant: guardOwn, input: guardQuery("begins_with(#pk, :v)", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/between on partition key", tenant: guardOwn, input: guardQuery("#pk BETWEEN :v AND :b", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/greater than on partition key", tenant: guardOwn, input: guardQuery("#pk > :v", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/OR", tenant: guardOwn, input: guardQuery("#pk = :v OR #pk = :a", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/syntax error", tenant: guardOwn, input: guardQuery("#pk = :v AND", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/undefined name placeholder", tenant: guardOwn, input: guardQuery("#x = :v", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/undefined value placeholder", tenant: guardOwn, input: guardQuery("#pk = :nope", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/number value", tenant: guardOwn, input: guardQuery("#pk = :n", pkNames, map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "1"}}), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/own and foreign equalities", tenant: guardOwn, input: guardQuery("#pk = :v AND tenant_id = :f", pkNames,
			map[string]types.AttributeValue{":v": guardS(guardOwn), ":f": guardS(guardForeign)}), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/no key condition", tenant: guardOwn, input: &dynamodb.QueryInput{TableName: aws.String("orders")}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/nil input", tenant: guardOwn, input: (*dynamodb.QueryInput)(nil), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/WithTable attribute", tables: []dynamoguard.Option{dynamoguard.WithTable(guardARN, "org")}, tenant: guardOwn,
			input: guardQuery("org = :v", nil, vals(guardOwn))},
		guardCase{name: "Query/WithTable other attribute does not count", tables: []dynamoguard.Option{dynamoguard.WithTable(guardARN, "org")}, tenant: guardOwn,
			input: guardQuery("#pk = :v", pkNames, vals(guardOwn)), want: dynamoguard.ErrUncheckable},
	)
	legacy := func(op types.ComparisonOperator, values ...types.AttributeValue) *dynamodb.QueryInput {
		return &dynamodb.QueryInput{TableName: aws.String("orders"), KeyConditions: map[string]types.Condition{
			"tenant_id": {ComparisonOperator: op, AttributeValueList: values},
			"order_id":  {ComparisonOperator: types.ComparisonOperatorBeginsWith, AttributeValueList: []types.AttributeValue{guardS("2024-")}},
		}}
	}
	add(
		guardCase{name: "Query/KeyConditions own", tenant: guardOwn, input: legacy(types.ComparisonOperatorEq, guardS(guardOwn))},
		guardCase{name: "Query/KeyConditions foreign", tenant: guardOwn, input: legacy(types.ComparisonOperatorEq, guardS(guardForeign)), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "Query/KeyConditions prefix", opts: prefixed, tenant: guardOwn, input: legacy(types.ComparisonOperatorEq, guardS("TENANT#"+guardOwn))},
		guardCase{name: "Query/KeyConditions BEGINS_WITH", tenant: guardOwn, input: legacy(types.ComparisonOperatorBeginsWith, guardS(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/KeyConditions two values", tenant: guardOwn, input: legacy(types.ComparisonOperatorEq, guardS(guardOwn), guardS(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/KeyConditions no value", tenant: guardOwn, input: legacy(types.ComparisonOperatorEq), want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/KeyConditions without partition key", tenant: guardOwn, input: &dynamodb.QueryInput{TableName: aws.String("orders"), KeyConditions: map[string]types.Condition{
			"order_id": {ComparisonOperator: types.ComparisonOperatorEq, AttributeValueList: []types.AttributeValue{guardS(guardOwn)}},
		}}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "Query/both forms, legacy foreign", tenant: guardOwn, input: func() any {
			q := legacy(types.ComparisonOperatorEq, guardS(guardForeign))
			q.KeyConditionExpression, q.ExpressionAttributeNames, q.ExpressionAttributeValues = aws.String("#pk = :v"), pkNames, vals(guardOwn)
			return q
		}(), want: dynamoguard.ErrCrossTenant},
	)

	// Batches and transactions: one foreign key among many refuses all.
	var manyOwn []map[string]types.AttributeValue
	for i := range 20 {
		manyOwn = append(manyOwn, guardKey(guardOwn, fmt.Sprint("o", i)))
	}
	withForeign := func(keys []map[string]types.AttributeValue) []map[string]types.AttributeValue {
		out := append([]map[string]types.AttributeValue(nil), keys[:13]...)
		out = append(out, guardKey(guardForeign, "o99"))
		return append(out, keys[13:]...)
	}
	add(
		guardCase{name: "BatchGetItem/own", tenant: guardOwn, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			"orders":  {Keys: manyOwn},
			guardARN:  {Keys: manyOwn[:2]},
			"history": {Keys: manyOwn[2:5]},
		}}},
		guardCase{name: "BatchGetItem/one foreign among many", tenant: guardOwn, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			"orders":  {Keys: manyOwn},
			"history": {Keys: withForeign(manyOwn)},
		}}, want: dynamoguard.ErrCrossTenant},
		guardCase{name: "BatchGetItem/foreign beats uncheckable", tables: []dynamoguard.Option{
			dynamoguard.WithTable("a", "tenant_id"), dynamoguard.WithTable("b", "tenant_id"), dynamoguard.WithTable("c", "tenant_id"),
		}, tenant: guardOwn, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			"a": {Keys: []map[string]types.AttributeValue{{"order_id": guardS("o1")}}},
			"b": {Keys: withForeign(manyOwn)},
			"c": {Keys: []map[string]types.AttributeValue{{"order_id": guardS("o1")}}},
		}}, want: dynamoguard.ErrCrossTenant},
		guardCase{name: "BatchGetItem/per-table attribute", opts: []dynamoguard.Option{dynamoguard.WithTable("users", "org")}, tenant: guardOwn,
			input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				"orders": {Keys: manyOwn},
				"users":  {Keys: []map[string]types.AttributeValue{{"org": guardS(guardOwn)}}},
			}}},
		guardCase{name: "BatchGetItem/no tenant", input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"orders": {Keys: manyOwn}}}, want: tenant.ErrNoTenant},
		guardCase{name: "BatchGetItem/empty", tenant: guardOwn, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{}}},
	)
	puts := func(keys []map[string]types.AttributeValue) []types.WriteRequest {
		var out []types.WriteRequest
		for _, k := range keys {
			out = append(out, types.WriteRequest{PutRequest: &types.PutRequest{Item: k}})
		}
		return out
	}
	add(
		guardCase{name: "BatchWriteItem/own", tenant: guardOwn, input: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"orders": append(puts(manyOwn[:10]), types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: guardKey(guardOwn, "gone")}}),
		}}},
		guardCase{name: "BatchWriteItem/one foreign put", tenant: guardOwn, input: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"orders": puts(withForeign(manyOwn)),
		}}, want: dynamoguard.ErrCrossTenant},
		guardCase{name: "BatchWriteItem/one foreign delete", tenant: guardOwn, input: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"orders":  puts(manyOwn),
			"history": {{DeleteRequest: &types.DeleteRequest{Key: guardKey(guardOwn, "x")}}, {DeleteRequest: &types.DeleteRequest{Key: guardKey(guardForeign, "y")}}},
		}}, want: dynamoguard.ErrCrossTenant},
		guardCase{name: "BatchWriteItem/missing key", tenant: guardOwn, input: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"orders": {{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"order_id": guardS("o1")}}}},
		}}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "BatchWriteItem/no tenant", input: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"orders": puts(manyOwn[:1]),
		}}, want: tenant.ErrNoTenant},
	)
	tget := func(keys ...map[string]types.AttributeValue) *dynamodb.TransactGetItemsInput {
		in := &dynamodb.TransactGetItemsInput{}
		for i, k := range keys {
			table := "orders"
			if i%2 == 1 {
				table = guardARN
			}
			in.TransactItems = append(in.TransactItems, types.TransactGetItem{Get: &types.Get{TableName: aws.String(table), Key: k}})
		}
		return in
	}
	add(
		guardCase{name: "TransactGetItems/own", tenant: guardOwn, input: tget(manyOwn[:5]...)},
		guardCase{name: "TransactGetItems/mixed", tenant: guardOwn, input: tget(withForeign(manyOwn[:20])...), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "TransactGetItems/no tenant", input: tget(manyOwn[:1]...), want: tenant.ErrNoTenant},
	)
	twrite := func(foreign string) *dynamodb.TransactWriteItemsInput {
		in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{ConditionCheck: &types.ConditionCheck{TableName: aws.String("orders"), Key: guardKey(guardOwn, "c"), ConditionExpression: aws.String("attribute_exists(order_id)")}},
			{Put: &types.Put{TableName: aws.String("orders"), Item: guardKey(guardOwn, "p")}},
			{Delete: &types.Delete{TableName: aws.String(guardARN), Key: guardKey(guardOwn, "d")}},
			{Update: &types.Update{TableName: aws.String("orders"), Key: guardKey(guardOwn, "u"), UpdateExpression: aws.String("SET n = :n")}},
		}}
		k := guardKey(guardForeign, "x")
		switch foreign {
		case "ConditionCheck":
			in.TransactItems[0].ConditionCheck.Key = k
		case "Put":
			in.TransactItems[1].Put.Item = k
		case "Delete":
			in.TransactItems[2].Delete.Key = k
		case "Update":
			in.TransactItems[3].Update.Key = k
		}
		return in
	}
	add(guardCase{name: "TransactWriteItems/own", tenant: guardOwn, input: twrite("")})
	for _, part := range []string{"ConditionCheck", "Put", "Delete", "Update"} {
		add(guardCase{name: "TransactWriteItems/mixed, foreign " + part, tenant: guardOwn, input: twrite(part), want: dynamoguard.ErrCrossTenant})
	}
	add(guardCase{name: "TransactWriteItems/no tenant", input: twrite(""), want: tenant.ErrNoTenant})

	// An item with more than one part (DynamoDB refuses it, after the
	// guard): every part is checked, not only the first.
	own := func() map[string]types.AttributeValue { return guardKey(guardOwn, "c") }
	check := &types.ConditionCheck{TableName: aws.String("orders"), Key: own(), ConditionExpression: aws.String("attribute_exists(order_id)")}
	foreign := guardKey(guardForeign, "x")
	for part, item := range map[string]types.TransactWriteItem{
		"Put":    {ConditionCheck: check, Put: &types.Put{TableName: aws.String("orders"), Item: foreign}},
		"Delete": {ConditionCheck: check, Delete: &types.Delete{TableName: aws.String("orders"), Key: foreign}},
		"Update": {ConditionCheck: check, Update: &types.Update{TableName: aws.String("orders"), Key: foreign, UpdateExpression: aws.String("SET n = :n")}},
		"all four, Update foreign": {ConditionCheck: check, Put: &types.Put{TableName: aws.String("orders"), Item: own()},
			Delete: &types.Delete{TableName: aws.String("orders"), Key: own()}, Update: &types.Update{TableName: aws.String("orders"), Key: foreign}},
	} {
		add(guardCase{name: "TransactWriteItems/one item, own ConditionCheck and foreign " + part, tenant: guardOwn,
			input: &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{item}}, want: dynamoguard.ErrCrossTenant})
	}
	add(
		guardCase{name: "TransactWriteItems/one item, own ConditionCheck and Put on an unknown table", tenant: guardOwn,
			input: &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{ConditionCheck: check, Put: &types.Put{TableName: aws.String("users"), Item: map[string]types.AttributeValue{"id": guardS("u1"), "tenant_id": guardS(guardOwn)}}},
			}}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "BatchWriteItem/one request, own Put and foreign Delete", tenant: guardOwn, input: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"orders": {{PutRequest: &types.PutRequest{Item: own()}, DeleteRequest: &types.DeleteRequest{Key: foreign}}},
		}}, want: dynamoguard.ErrCrossTenant},
		guardCase{name: "BatchWriteItem/one request, foreign Put and own Delete", tenant: guardOwn, input: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"orders": {{PutRequest: &types.PutRequest{Item: foreign}, DeleteRequest: &types.DeleteRequest{Key: own()}}},
		}}, want: dynamoguard.ErrCrossTenant},
	)

	// Scan, SearchVectors, PartiQL.
	scan := &dynamodb.ScanInput{TableName: aws.String("orders")}
	parallel := &dynamodb.ScanInput{TableName: aws.String("orders"), Segment: aws.Int32(1), TotalSegments: aws.Int32(4)}
	withScan := []dynamoguard.Option{dynamoguard.WithScan()}
	search := func(cond string, pk string) *dynamodb.SearchVectorsInput {
		in := &dynamodb.SearchVectorsInput{TableName: aws.String("orders"), IndexName: aws.String("embeddings"), TopK: aws.Int32(3),
			SearchVector: []types.AttributeValue{&types.AttributeValueMemberN{Value: "0.5"}}}
		if cond != "" {
			in.SearchConditionExpression = aws.String(cond)
			in.ExpressionAttributeNames = pkNames
			in.ExpressionAttributeValues = vals(pk)
		}
		return in
	}
	add(
		guardCase{name: "Scan/refused", tenant: guardOwn, input: scan, want: dynamoguard.ErrUncheckable},
		guardCase{name: "Scan/refused without tenant", input: scan, want: dynamoguard.ErrUncheckable},
		guardCase{name: "Scan/parallel refused", tenant: guardOwn, input: parallel, want: dynamoguard.ErrUncheckable},
		guardCase{name: "Scan/with filter on tenant still refused", tenant: guardOwn, input: &dynamodb.ScanInput{TableName: aws.String("orders"),
			FilterExpression: aws.String("#pk = :v"), ExpressionAttributeNames: pkNames, ExpressionAttributeValues: vals(guardOwn)}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "Scan/WithScan", opts: withScan, tenant: guardOwn, input: scan},
		guardCase{name: "Scan/WithScan parallel", opts: withScan, tenant: guardOwn, input: parallel},
		guardCase{name: "Scan/WithScan without tenant", opts: withScan, input: scan},
		guardCase{name: "SearchVectors/no condition", tenant: guardOwn, input: search("", ""), want: dynamoguard.ErrUncheckable},
		guardCase{name: "SearchVectors/own condition", tenant: guardOwn, input: search("#pk = :v", guardOwn)},
		guardCase{name: "SearchVectors/foreign condition", tenant: guardOwn, input: search("#pk = :v", guardForeign), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "SearchVectors/no tenant", input: search("#pk = :v", guardOwn), want: tenant.ErrNoTenant},
		guardCase{name: "SearchVectors/WithScan", opts: withScan, tenant: guardOwn, input: search("", "")},
	)
	partiQL := map[string]any{
		"ExecuteStatement":      &dynamodb.ExecuteStatementInput{Statement: aws.String(`SELECT * FROM orders WHERE tenant_id = ?`), Parameters: []types.AttributeValue{guardS(guardOwn)}},
		"BatchExecuteStatement": &dynamodb.BatchExecuteStatementInput{Statements: []types.BatchStatementRequest{{Statement: aws.String(`SELECT * FROM orders`)}}},
		"ExecuteTransaction":    &dynamodb.ExecuteTransactionInput{TransactStatements: []types.ParameterizedStatement{{Statement: aws.String(`DELETE FROM orders`)}}},
	}
	for _, op := range []string{"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"} {
		add(
			guardCase{name: op + "/refused", tenant: guardOwn, input: partiQL[op], want: dynamoguard.ErrUncheckable},
			guardCase{name: op + "/WithPartiQL", opts: []dynamoguard.Option{dynamoguard.WithPartiQL()}, tenant: guardOwn, input: partiQL[op]},
			guardCase{name: op + "/WithPartiQL without tenant", opts: []dynamoguard.Option{dynamoguard.WithPartiQL()}, input: partiQL[op]},
			guardCase{name: op + "/WithScan does not allow it", opts: withScan, tenant: guardOwn, input: partiQL[op], want: dynamoguard.ErrUncheckable},
		)
	}

	// Tables the guard was not told about are refused, whatever their items
	// say: "users" is keyed by id, and tenant_id is a plain attribute the
	// request sets itself.
	user := func(tenantID string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"id": guardS("u1"), "tenant_id": guardS(tenantID)}
	}
	add(
		guardCase{name: "unknown table/PutItem with own tenant attribute", tenant: guardOwn,
			input: &dynamodb.PutItemInput{TableName: aws.String("users"), Item: user(guardOwn)}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "unknown table/GetItem", tenant: guardOwn, input: get("users", user(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "unknown table/by ARN", tenant: guardOwn,
			input: get("arn:aws:dynamodb:eu-west-1:123456789012:table/users", user(guardOwn)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "unknown table/no table name", tenant: guardOwn, input: &dynamodb.GetItemInput{Key: guardKey(guardOwn, "o1")}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "unknown table/Query", tenant: guardOwn, input: &dynamodb.QueryInput{TableName: aws.String("users"),
			KeyConditionExpression: aws.String("tenant_id = :v"), ExpressionAttributeValues: vals(guardOwn)}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "unknown table/Scan", opts: nil, tenant: guardOwn, input: &dynamodb.ScanInput{TableName: aws.String("users")}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "unknown table/among known ones in a batch", tenant: guardOwn, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			"orders": {Keys: manyOwn},
			"users":  {Keys: []map[string]types.AttributeValue{user(guardOwn)}},
		}}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "unknown table/in a transaction", tenant: guardOwn, input: &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String("orders"), Item: guardKey(guardOwn, "o1")}},
			{Put: &types.Put{TableName: aws.String("users"), Item: user(guardOwn)}},
		}}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "unknown table/foreign key elsewhere still cross-tenant", tenant: guardOwn, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			"users":  {Keys: []map[string]types.AttributeValue{user(guardOwn)}},
			"orders": {Keys: withForeign(manyOwn)},
		}}, want: dynamoguard.ErrCrossTenant},
	)

	// Unguarded tables pass unread, tenant or not; they do not let the
	// rest of a request through.
	flags := []dynamoguard.Option{dynamoguard.WithUnguardedTable("flags")}
	flag := map[string]types.AttributeValue{"name": guardS("dark-mode")}
	add(
		guardCase{name: "unguarded/GetItem", opts: flags, tenant: guardOwn, input: get("flags", flag)},
		guardCase{name: "unguarded/GetItem without tenant", opts: flags, input: get("flags", flag)},
		guardCase{name: "unguarded/GetItem by ARN", opts: flags, input: get("arn:aws:dynamodb:eu-west-1:123456789012:table/flags", flag)},
		guardCase{name: "unguarded/Scan", opts: flags, input: &dynamodb.ScanInput{TableName: aws.String("flags")}},
		guardCase{name: "unguarded/Query", opts: flags, input: &dynamodb.QueryInput{TableName: aws.String("flags"), KeyConditionExpression: aws.String("#n = :n"),
			ExpressionAttributeNames: map[string]string{"#n": "name"}, ExpressionAttributeValues: map[string]types.AttributeValue{":n": guardS("x")}}},
		guardCase{name: "unguarded/batch with a guarded table, own", opts: flags, tenant: guardOwn, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			"flags": {Keys: []map[string]types.AttributeValue{flag}}, "orders": {Keys: manyOwn},
		}}},
		guardCase{name: "unguarded/batch with a guarded table, foreign", opts: flags, tenant: guardOwn, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			"flags": {Keys: []map[string]types.AttributeValue{flag}}, "orders": {Keys: withForeign(manyOwn)},
		}}, want: dynamoguard.ErrCrossTenant},
		guardCase{name: "unguarded/batch with a guarded table, no tenant", opts: flags, input: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			"flags": {Keys: []map[string]types.AttributeValue{flag}}, "orders": {Keys: manyOwn},
		}}, want: tenant.ErrNoTenant},
		guardCase{name: "unguarded/other tables still guarded", opts: flags, tenant: guardOwn, input: get("orders", guardKey(guardForeign, "o1")), want: dynamoguard.ErrCrossTenant},
	)

	// A tenant the request claimed for itself (its Host, its path) counts
	// as none, unless the service allows claimed tenants.
	allowClaimed := []dynamoguard.Option{dynamoguard.WithClaimedTenants()}
	add(
		guardCase{name: "claimed/GetItem own key", tenant: guardOwn, claimed: true, input: get("orders", guardKey(guardOwn, "o1")), want: tenant.ErrNoTenant},
		guardCase{name: "claimed/Query", tenant: guardOwn, claimed: true, input: guardQuery("#pk = :v", pkNames, vals(guardOwn)), want: tenant.ErrNoTenant},
		guardCase{name: "claimed/TransactWriteItems", tenant: guardOwn, claimed: true, input: twrite(""), want: tenant.ErrNoTenant},
		guardCase{name: "claimed/WithClaimedTenants own key", opts: allowClaimed, tenant: guardOwn, claimed: true, input: get("orders", guardKey(guardOwn, "o1"))},
		guardCase{name: "claimed/WithClaimedTenants foreign key", opts: allowClaimed, tenant: guardOwn, claimed: true, input: get("orders", guardKey(guardForeign, "o1")), want: dynamoguard.ErrCrossTenant},
		guardCase{name: "claimed/unguarded table", opts: flags, tenant: guardOwn, claimed: true, input: get("flags", flag)},
	)

	// Operations on tables, not items, pass, tenant or not.
	add(
		guardCase{name: "DescribeTable", input: &dynamodb.DescribeTableInput{TableName: aws.String("orders")}},
		guardCase{name: "DescribeTable of an unknown table", input: &dynamodb.DescribeTableInput{TableName: aws.String("users")}},
		guardCase{name: "CreateTable", input: &dynamodb.CreateTableInput{TableName: aws.String("orders")}},
		guardCase{name: "ListTables", tenant: guardOwn, input: &dynamodb.ListTablesInput{}},
		guardCase{name: "TagResource", input: &dynamodb.TagResourceInput{ResourceArn: aws.String(guardARN), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}},
		guardCase{name: "ExportTableToPointInTime", input: &dynamodb.ExportTableToPointInTimeInput{TableArn: aws.String(guardARN), S3Bucket: aws.String("b")}},
	)

	// Everything else is refused: inputs the guard does not know, inputs
	// passed by value (which it would otherwise not recognise), and data
	// operations it cannot read.
	add(
		guardCase{name: "StartBulkPutItems", tenant: guardOwn, input: &dynamodb.StartBulkPutItemsInput{TableName: aws.String("orders")}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "not a DynamoDB input", input: "GetItem", want: dynamoguard.ErrUncheckable},
		guardCase{name: "nil", input: nil, want: dynamoguard.ErrUncheckable},
		guardCase{name: "by value/GetItem foreign", tenant: guardOwn, input: dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey(guardForeign, "o1")}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "by value/GetItem own", tenant: guardOwn, input: dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey(guardOwn, "o1")}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "by value/PutItem", tenant: guardOwn, input: dynamodb.PutItemInput{TableName: aws.String("orders"), Item: guardKey(guardForeign, "o1")}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "by value/Query", tenant: guardOwn, input: *guardQuery("#pk = :v", pkNames, vals(guardForeign)), want: dynamoguard.ErrUncheckable},
		guardCase{name: "by value/TransactWriteItems", tenant: guardOwn, input: *twrite("Put"), want: dynamoguard.ErrUncheckable},
		guardCase{name: "by value/Scan", tenant: guardOwn, opts: withScan, input: *scan, want: dynamoguard.ErrUncheckable},
		guardCase{name: "by value/DescribeTable", input: dynamodb.DescribeTableInput{TableName: aws.String("orders")}, want: dynamoguard.ErrUncheckable},
		guardCase{name: "pointer to pointer", tenant: guardOwn, input: func() any { in := get("orders", guardKey(guardForeign, "o1")); return &in }(), want: dynamoguard.ErrUncheckable},
	)
	return cases
}

func TestGuardCheck(t *testing.T) {
	for _, tc := range guardCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.guard(t).Check(tc.ctx(), tc.input)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			var ge *dynamoguard.Error
			if !errors.As(err, &ge) {
				t.Fatalf("Check = %T, want *Error", err)
			}
			if ge.Operation == "" || ge.Reason == "" {
				t.Errorf("Error %+v lacks operation or reason", ge)
			}
			if strings.Contains(err.Error(), guardForeign) {
				t.Errorf("error %q contains the other tenant's key value", err)
			}
		})
	}
}

func TestGuardErrorFields(t *testing.T) {
	g, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"), dynamoguard.WithKeyPrefix("TENANT#"))
	if err != nil {
		t.Fatal(err)
	}
	err = g.Check(guardCtx(guardOwn), &dynamodb.GetItemInput{TableName: aws.String(guardARN), Key: guardKey("TENANT#"+guardForeign, "o1")})
	var ge *dynamoguard.Error
	if !errors.As(err, &ge) {
		t.Fatalf("Check = %v, want *Error", err)
	}
	want := dynamoguard.Error{Operation: "GetItem", Table: guardARN, Reason: `partition key "tenant_id" is not the caller's tenant`, Err: dynamoguard.ErrCrossTenant}
	if *ge != want {
		t.Errorf("Error = %+v, want %+v", *ge, want)
	}
	wantText := `dynamoguard: dynamodb GetItem on table "` + guardARN + `" refused: partition key "tenant_id" is not the caller's tenant`
	if ge.Error() != wantText {
		t.Errorf("Error() = %q, want %q", ge.Error(), wantText)
	}
	if (&dynamoguard.Error{Operation: "Scan", Err: dynamoguard.ErrUncheckable}).Error() != "dynamoguard: dynamodb Scan refused: request cannot be checked for its tenant" {
		t.Errorf("Error() without reason = %q", (&dynamoguard.Error{Operation: "Scan", Err: dynamoguard.ErrUncheckable}).Error())
	}
}

// The refusals that a configuration can fix name the option that fixes
// them.
func TestGuardReasonsNameTheFix(t *testing.T) {
	g, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		ctx   context.Context
		input any
		want  dynamoguard.Error
	}{
		{"unknown table", guardCtx(guardOwn), &dynamodb.PutItemInput{TableName: aws.String("users"), Item: map[string]types.AttributeValue{"id": guardS("u1")}},
			dynamoguard.Error{Operation: "PutItem", Table: "users", Err: dynamoguard.ErrUncheckable,
				Reason: "the guard was not told about this table (name it with WithTable, or let it through unchecked with WithUnguardedTable)"}},
		{"claimed tenant", guardClaimedCtx(guardOwn), &dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey(guardOwn, "o1")},
			dynamoguard.Error{Operation: "GetItem", Table: "orders", Err: tenant.ErrNoTenant,
				Reason: "the tenant was claimed by the request, not verified (allow claimed tenants with WithClaimedTenants)"}},
		{"no tenant", context.Background(), &dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey(guardOwn, "o1")},
			dynamoguard.Error{Operation: "GetItem", Table: "orders", Err: tenant.ErrNoTenant, Reason: "no tenant in context"}},
		{"by value", guardCtx(guardOwn), dynamodb.GetItemInput{TableName: aws.String("orders")},
			dynamoguard.Error{Operation: "dynamodb.GetItemInput", Err: dynamoguard.ErrUncheckable,
				Reason: "the guard does not check inputs of type dynamodb.GetItemInput (an operation on items it cannot read, or an input passed by value, not as a pointer)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ge *dynamoguard.Error
			if err := g.Check(c.ctx, c.input); !errors.As(err, &ge) {
				t.Fatalf("Check = %v, want a *Error", err)
			}
			if *ge != c.want {
				t.Errorf("Error = %+v\nwant          %+v", *ge, c.want)
			}
		})
	}
}

// Every operation of the DynamoDB client is either checked by the guard,
// let through as an operation on tables, or refused; an operation the SDK
// adds is refused until it is sorted into one of these, and this test
// names it.
func TestGuardKnowsEveryOperation(t *testing.T) {
	refused := map[string]bool{ // data operations the guard cannot read
		"StartBulkPutItems": true,
	}
	checked := map[string]bool{ // by guardCases
		"GetItem": true, "PutItem": true, "UpdateItem": true, "DeleteItem": true, "Query": true,
		"BatchGetItem": true, "BatchWriteItem": true, "TransactGetItems": true, "TransactWriteItems": true,
		"Scan": true, "SearchVectors": true, "ExecuteStatement": true, "BatchExecuteStatement": true, "ExecuteTransaction": true,
	}
	g, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"))
	if err != nil {
		t.Fatal(err)
	}
	client := reflect.TypeOf(&dynamodb.Client{})
	ctxType := reflect.TypeOf((*context.Context)(nil)).Elem()
	ops := 0
	for i := range client.NumMethod() {
		m := client.Method(i)
		if m.Type.NumIn() != 4 || m.Type.In(1) != ctxType || m.Type.In(2).Kind() != reflect.Pointer ||
			m.Type.In(2).Elem().Name() != m.Name+"Input" {
			continue
		}
		ops++
		input := reflect.New(m.Type.In(2).Elem()).Interface()
		err := g.Check(context.Background(), input)
		switch {
		case checked[m.Name]:
		case refused[m.Name] && !errors.Is(err, dynamoguard.ErrUncheckable):
			t.Errorf("%s: Check = %v, want ErrUncheckable", m.Name, err)
		case !refused[m.Name] && err != nil:
			t.Errorf("%s: refused (%v); a new operation? Check it, let it through in guardtables.go, or list it here as refused", m.Name, err)
		}
	}
	if ops < 50 {
		t.Fatalf("found %d operations on the client; the test no longer finds them", ops)
	}
}

func TestNewErrors(t *testing.T) {
	orders := dynamoguard.WithTable("orders", "tenant_id")
	tests := []struct {
		name string
		opts []dynamoguard.Option
		want string
	}{
		{"no table", nil, "no table; name each table the client uses with WithTable"},
		{"only other options", []dynamoguard.Option{dynamoguard.WithKeyPrefix("T#"), dynamoguard.WithScan()}, "no table"},
		{"WithTable empty table", []dynamoguard.Option{orders, dynamoguard.WithTable("", "org")}, "WithTable: empty table name"},
		{"WithTable empty attribute", []dynamoguard.Option{dynamoguard.WithTable("users", "")}, "empty partition key attribute"},
		{"WithTable not a table ARN", []dynamoguard.Option{dynamoguard.WithTable("arn:aws:dynamodb:eu-west-1:123456789012:backup/x", "org")}, "not a DynamoDB table ARN"},
		{"WithTable short ARN", []dynamoguard.Option{dynamoguard.WithTable("arn:aws:dynamodb:table/x", "org")}, "not a DynamoDB table ARN"},
		{"WithTable twice, different attributes", []dynamoguard.Option{dynamoguard.WithTable("users", "org"), dynamoguard.WithTable(
			"arn:aws:dynamodb:eu-west-1:123456789012:table/users", "account")}, "partition key set twice"},
		{"WithTableKeyPrefix empty table", []dynamoguard.Option{orders, dynamoguard.WithTableKeyPrefix("", "T#")}, "WithTableKeyPrefix: empty table name"},
		{"WithTableKeyPrefix twice, different prefixes", []dynamoguard.Option{dynamoguard.WithTable("users", "org"), dynamoguard.WithTableKeyPrefix("users", "T#"), dynamoguard.WithTableKeyPrefix("users", "")}, "prefix set twice"},
		{"WithTableKeyPrefix without WithTable", []dynamoguard.Option{orders, dynamoguard.WithTableKeyPrefix("users", "T#")}, `WithTableKeyPrefix("users"): the table has no partition key; name it with WithTable`},
		{"WithUnguardedTable empty table", []dynamoguard.Option{orders, dynamoguard.WithUnguardedTable("")}, "WithUnguardedTable: empty table name"},
		{"WithUnguardedTable not a table ARN", []dynamoguard.Option{dynamoguard.WithUnguardedTable("arn:aws:s3:::bucket")}, "not a DynamoDB table ARN"},
		{"guarded and unguarded", []dynamoguard.Option{orders, dynamoguard.WithUnguardedTable(guardARN)}, `table "orders" is both unguarded`},
		{"prefix and unguarded", []dynamoguard.Option{orders, dynamoguard.WithUnguardedTable("flags"), dynamoguard.WithTableKeyPrefix("flags", "")}, `table "flags" is both unguarded`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := dynamoguard.New(tt.opts...)
			if err == nil || g != nil {
				t.Fatalf("New = %v, %v; want an error", g, err)
			}
			if !strings.HasPrefix(err.Error(), "dynamoguard: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one with the package prefix that says %q", err, tt.want)
			}
		})
	}

	// What is not a mistake: nil options, the same setting twice, a guard
	// of unguarded tables only.
	_, err := dynamoguard.New(nil, dynamoguard.WithTable("users", "org"), dynamoguard.WithTable(guardARN[:len(guardARN)-len("orders")]+"users", "org"),
		dynamoguard.WithTableKeyPrefix("users", "T#"), dynamoguard.WithTableKeyPrefix("users", "T#"), dynamoguard.WithOnRefuse(nil),
		dynamoguard.WithUnguardedTable("flags"), dynamoguard.WithUnguardedTable("flags"))
	if err != nil {
		t.Errorf("New = %v", err)
	}
	if _, err := dynamoguard.New(dynamoguard.WithUnguardedTable("flags")); err != nil {
		t.Errorf("New(WithUnguardedTable) = %v", err)
	}
}

// guardRecorder is a WithOnRefuse hook that keeps what it was called with.
type guardRecorder struct {
	mu   sync.Mutex
	errs []*dynamoguard.Error
}

func (r *guardRecorder) hook(ctx context.Context, err *dynamoguard.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *guardRecorder) take() []*dynamoguard.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := r.errs
	r.errs = nil
	return errs
}

// guardHTTPClient answers every request with a canned DynamoDB answer
// (an empty JSON object, which fits every operation's output) and counts
// the requests.
type guardHTTPClient struct {
	mu      sync.Mutex
	targets []string
}

func (c *guardHTTPClient) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.targets = append(c.targets, r.Header.Get("X-Amz-Target"))
	c.mu.Unlock()
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(bytes.NewReader([]byte("{}"))),
		Request:    r,
	}, nil
}

func (c *guardHTTPClient) sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.targets
	c.targets = nil
	return out
}

func guardAWSConfig(hc aws.HTTPClient) aws.Config {
	return aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDGUARDTEST", "secret", ""),
		HTTPClient:  hc,
	}
}

// guardCall calls the client's operation for input.
func guardCall(ctx context.Context, c *dynamodb.Client, input any) error {
	var err error
	switch in := input.(type) {
	case *dynamodb.GetItemInput:
		_, err = c.GetItem(ctx, in)
	case *dynamodb.PutItemInput:
		_, err = c.PutItem(ctx, in)
	case *dynamodb.UpdateItemInput:
		_, err = c.UpdateItem(ctx, in)
	case *dynamodb.DeleteItemInput:
		_, err = c.DeleteItem(ctx, in)
	case *dynamodb.QueryInput:
		_, err = c.Query(ctx, in)
	case *dynamodb.BatchGetItemInput:
		_, err = c.BatchGetItem(ctx, in)
	case *dynamodb.BatchWriteItemInput:
		_, err = c.BatchWriteItem(ctx, in)
	case *dynamodb.TransactGetItemsInput:
		_, err = c.TransactGetItems(ctx, in)
	case *dynamodb.TransactWriteItemsInput:
		_, err = c.TransactWriteItems(ctx, in)
	case *dynamodb.ScanInput:
		_, err = c.Scan(ctx, in)
	case *dynamodb.SearchVectorsInput:
		_, err = c.SearchVectors(ctx, in)
	case *dynamodb.ExecuteStatementInput:
		_, err = c.ExecuteStatement(ctx, in)
	case *dynamodb.BatchExecuteStatementInput:
		_, err = c.BatchExecuteStatement(ctx, in)
	case *dynamodb.ExecuteTransactionInput:
		_, err = c.ExecuteTransaction(ctx, in)
	case *dynamodb.DescribeTableInput:
		_, err = c.DescribeTable(ctx, in)
	case *dynamodb.ListTablesInput:
		_, err = c.ListTables(ctx, in)
	case *dynamodb.TagResourceInput:
		_, err = c.TagResource(ctx, in)
	case *dynamodb.StartBulkPutItemsInput:
		_, err = c.StartBulkPutItems(ctx, in)
	default:
		panic(fmt.Sprintf("guardCall: no call for %T", input))
	}
	return err
}

// Through a client, every case ends as Check decided: a refused request
// never reaches the HTTP client, and the hook sees each refusal once.
func TestGuardMiddleware(t *testing.T) {
	for _, tc := range guardCases() {
		switch tc.input.(type) {
		case nil, string, *dynamodb.CreateTableInput, *dynamodb.ExportTableToPointInTimeInput: // no call, or one the SDK's validation fails
			continue
		}
		if v := reflect.ValueOf(tc.input); v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			continue // a client takes pointers to inputs only
		}
		if fmt.Sprint(tc.input) == "<nil>" {
			continue // the client replaces a nil input by an empty one
		}
		t.Run(tc.name, func(t *testing.T) {
			var rec guardRecorder
			g := tc.guard(t, dynamoguard.WithOnRefuse(rec.hook))
			hc := &guardHTTPClient{}
			client := dynamodb.NewFromConfig(guardAWSConfig(hc), g.Options())
			err := guardCall(tc.ctx(), client, tc.input)
			sent, refusals := hc.sent(), rec.take()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("call = %v, want nil", err)
				}
				if len(sent) != 1 {
					t.Errorf("sent %q, want one request", sent)
				}
				if len(refusals) != 0 {
					t.Errorf("hook called with %v for a request that passed", refusals)
				}
				return
			}
			var ge *dynamoguard.Error
			if !errors.As(err, &ge) || !errors.Is(err, tc.want) {
				t.Fatalf("call = %v, want a *Error wrapping %v", err, tc.want)
			}
			if len(sent) != 0 {
				t.Errorf("refused request sent: %q", sent)
			}
			if len(refusals) != 1 || refusals[0] != ge {
				t.Errorf("hook called with %v, want once with %v", refusals, ge)
			}
			if strings.Contains(err.Error(), guardForeign) {
				t.Errorf("error %q contains the other tenant's key value", err)
			}
		})
	}
}

// The hook gets the caller's context (to log with its request ID, say),
// and Check alone does not call it.
func TestGuardOnRefuse(t *testing.T) {
	type ctxKey struct{}
	var got []context.Context
	g, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"), dynamoguard.WithOnRefuse(func(ctx context.Context, err *dynamoguard.Error) {
		got = append(got, ctx)
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(guardCtx(guardOwn), ctxKey{}, "req-1")
	in := &dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey(guardForeign, "o1")}
	if err := g.Check(ctx, in); !errors.Is(err, dynamoguard.ErrCrossTenant) {
		t.Fatalf("Check = %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("Check called the hook %d times", len(got))
	}
	client := dynamodb.NewFromConfig(guardAWSConfig(&guardHTTPClient{}), g.Options())
	for range 3 {
		if _, err := client.GetItem(ctx, in); !errors.Is(err, dynamoguard.ErrCrossTenant) {
			t.Fatalf("GetItem = %v", err)
		}
	}
	if len(got) != 3 {
		t.Fatalf("hook called %d times for 3 refusals", len(got))
	}
	if got[0].Value(ctxKey{}) != "req-1" {
		t.Errorf("hook got a context without the caller's values")
	}
}

// Two guards on one client both check every request; the first to refuse
// stops it, so a refusal reaches one hook once.
func TestGuardTwoGuards(t *testing.T) {
	var first, second guardRecorder
	byTenant, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"), dynamoguard.WithOnRefuse(first.hook))
	if err != nil {
		t.Fatal(err)
	}
	prefixed, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"), dynamoguard.WithKeyPrefix("T#"), dynamoguard.WithOnRefuse(second.hook))
	if err != nil {
		t.Fatal(err)
	}
	hc := &guardHTTPClient{}
	client := dynamodb.NewFromConfig(guardAWSConfig(hc), byTenant.Options(), prefixed.Options(), byTenant.Options())
	ctx := guardCtx(guardOwn)
	for _, pk := range []string{guardOwn, "T#" + guardOwn, guardForeign} {
		_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey(pk, "o1")})
		if !errors.Is(err, dynamoguard.ErrCrossTenant) {
			t.Errorf("GetItem(%q) = %v, want ErrCrossTenant", pk, err)
		}
	}
	if sent := hc.sent(); len(sent) != 0 {
		t.Errorf("sent %q", sent)
	}
	if n1, n2 := len(first.take()), len(second.take()); n1+n2 != 3 {
		t.Errorf("hooks called %d and %d times for 3 refusals", n1, n2)
	}
	if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Errorf("ListTables = %v", err)
	}
}

// One Guard serves many goroutines and tenants at once.
func TestGuardConcurrent(t *testing.T) {
	g, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"), dynamoguard.WithTable("users", "org"), dynamoguard.WithKeyPrefix("T#"))
	if err != nil {
		t.Fatal(err)
	}
	client := dynamodb.NewFromConfig(guardAWSConfig(&guardHTTPClient{}), g.Options())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			id := fmt.Sprint("tenant-", i)
			other := fmt.Sprint("tenant-", (i+1)%8)
			ctx := guardCtx(id)
			for range 50 {
				if _, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey("T#"+id, "o")}); err != nil {
					t.Errorf("own GetItem: %v", err)
					return
				}
				if _, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("users"), Key: map[string]types.AttributeValue{"org": guardS("T#" + other)}}); !errors.Is(err, dynamoguard.ErrCrossTenant) {
					t.Errorf("foreign GetItem: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

var guardSink error

func BenchmarkGuardCheck(b *testing.B) {
	g, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"), dynamoguard.WithKeyPrefix("TENANT#"), dynamoguard.WithTable("users", "org"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := guardCtx(guardOwn)
	b.Run("GetItem", func(b *testing.B) {
		in := &dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey("TENANT#"+guardOwn, "o1")}
		b.ReportAllocs()
		for b.Loop() {
			guardSink = g.Check(ctx, in)
		}
		if guardSink != nil {
			b.Fatal(guardSink)
		}
	})
	b.Run("Query", func(b *testing.B) {
		in := guardQuery("#pk = :v AND begins_with(#sk, :p)",
			map[string]string{"#pk": "tenant_id", "#sk": "order_id"},
			map[string]types.AttributeValue{":v": guardS("TENANT#" + guardOwn), ":p": guardS("2024-")})
		b.ReportAllocs()
		for b.Loop() {
			guardSink = g.Check(ctx, in)
		}
		if guardSink != nil {
			b.Fatal(guardSink)
		}
	})
	b.Run("BatchGetItem100", func(b *testing.B) {
		keys := make([]map[string]types.AttributeValue, 100)
		for i := range keys {
			keys[i] = guardKey("TENANT#"+guardOwn, fmt.Sprint("o", i))
		}
		in := &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"orders": {Keys: keys}}}
		b.ReportAllocs()
		for b.Loop() {
			guardSink = g.Check(ctx, in)
		}
		if guardSink != nil {
			b.Fatal(guardSink)
		}
	})
}

// BenchmarkGuardOverhead measures a GetItem through a real client and HTTP
// on loopback, with and without the guard: the difference is the guard.
func BenchmarkGuardOverhead(b *testing.B) {
	const answer = `{"Item":{"tenant_id":{"S":"acme"},"order_id":{"S":"o1"},"total":{"N":"12"}}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	g, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := guardCtx(guardOwn)
	in := &dynamodb.GetItemInput{TableName: aws.String("orders"), Key: guardKey(guardOwn, "o1")}
	for _, bc := range []struct {
		name string
		opts []func(*dynamodb.Options)
	}{
		{"without", nil},
		{"with", []func(*dynamodb.Options){g.Options()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			transport := &http.Transport{}
			defer transport.CloseIdleConnections()
			opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(srv.URL) }}, bc.opts...)
			client := dynamodb.NewFromConfig(guardAWSConfig(&http.Client{Transport: transport}), opts...)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.GetItem(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleGuard_Check() {
	guard, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"), dynamoguard.WithKeyPrefix("TENANT#"))
	if err != nil {
		panic(err)
	}
	ctx := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme"})

	get := func(pk string) *dynamodb.GetItemInput {
		return &dynamodb.GetItemInput{
			TableName: aws.String("orders"),
			Key: map[string]types.AttributeValue{
				"tenant_id": &types.AttributeValueMemberS{Value: pk},
				"order_id":  &types.AttributeValueMemberS{Value: "o-1"},
			},
		}
	}
	fmt.Println(guard.Check(ctx, get("TENANT#acme")))
	err = guard.Check(ctx, get("TENANT#globex"))
	fmt.Println(errors.Is(err, dynamoguard.ErrCrossTenant))
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// dynamoguard: dynamodb GetItem on table "orders" refused: partition key "tenant_id" is not the caller's tenant
}
