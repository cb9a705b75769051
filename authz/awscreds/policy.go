package awscreds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// policyDocument is an IAM policy document.
type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

// statement is one statement of a policyDocument.
type statement struct {
	Sid       string                    `json:"Sid,omitempty"`
	Effect    string                    `json:"Effect"`
	Principal map[string]any            `json:"Principal,omitempty"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource,omitempty"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// itemActions are the DynamoDB actions a tenant role needs for its own
// items; transactions and batches are authorised per item by these.
var itemActions = []string{
	"dynamodb:BatchGetItem",
	"dynamodb:BatchWriteItem",
	"dynamodb:ConditionCheckItem",
	"dynamodb:DeleteItem",
	"dynamodb:GetItem",
	"dynamodb:PutItem",
	"dynamodb:Query",
	"dynamodb:UpdateItem",
}

// deniedActions read or write across partitions, so no tenant role gets
// them, whatever else is attached to it.
var deniedActions = []string{
	"dynamodb:PartiQLDelete",
	"dynamodb:PartiQLInsert",
	"dynamodb:PartiQLSelect",
	"dynamodb:PartiQLUpdate",
	"dynamodb:Scan",
}

// PermissionPolicy returns the permission policy of the tenant role for a
// pooled table: item actions only where the partition key ("leading key")
// is keyPrefix followed by the session's tenant tag, on the table and its
// indexes, and an explicit deny of Scan and PartiQL. tagKey is the session
// tag of [WithTagKey]. The same document is shipped as
// iam/permission-policy.json for the table of the orders example.
func PermissionPolicy(tableARN, tagKey, keyPrefix string) ([]byte, error) {
	if !strings.HasPrefix(tableARN, "arn:") || !strings.Contains(tableARN, ":table/") {
		return nil, fmt.Errorf("awscreds: %q is not a DynamoDB table ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)", tableARN)
	}
	if err := checkTagKey(tagKey); err != nil {
		return nil, fmt.Errorf("awscreds: PermissionPolicy: %w", err)
	}
	resources := []string{tableARN, tableARN + "/index/*"}
	return marshalPolicy(policyDocument{
		Version: "2012-10-17",
		Statement: []statement{
			{
				Sid:      "OwnTenantItemsOnly",
				Effect:   "Allow",
				Action:   itemActions,
				Resource: resources,
				Condition: map[string]map[string]any{
					"ForAllValues:StringEquals": {
						"dynamodb:LeadingKeys": []string{keyPrefix + "${aws:PrincipalTag/" + tagKey + "}"},
					},
				},
			},
			{
				Sid:      "NoCrossPartitionReads",
				Effect:   "Deny",
				Action:   deniedActions,
				Resource: resources,
			},
		},
	})
}

// TrustPolicy returns the trust policy of the tenant role: principalARN
// (the service's own role) may assume it and must tag the session with
// tagKey, which sts:TagSession allows.
func TrustPolicy(principalARN, tagKey string) ([]byte, error) {
	if !strings.HasPrefix(principalARN, "arn:") {
		return nil, fmt.Errorf("awscreds: %q is not an IAM principal ARN", principalARN)
	}
	if err := checkTagKey(tagKey); err != nil {
		return nil, fmt.Errorf("awscreds: TrustPolicy: %w", err)
	}
	return marshalPolicy(policyDocument{
		Version: "2012-10-17",
		Statement: []statement{{
			Sid:       "ServiceAssumesPerTenant",
			Effect:    "Allow",
			Principal: map[string]any{"AWS": principalARN},
			Action:    []string{"sts:AssumeRole", "sts:TagSession"},
			Condition: map[string]map[string]any{
				"Null": {"aws:RequestTag/" + tagKey: "false"},
			},
		}},
	})
}

// SessionPolicy is a template for [WithSessionPolicy] that limits a
// session to one tenant's items of tableARN without ABAC: the tenant ID is
// written into the policy itself. Use it where roles cannot rely on
// session tags.
func SessionPolicy(tableARN, keyPrefix string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"OwnTenantItemsOnly","Effect":"Allow",` +
		`"Action":` + mustJSON(itemActions) + `,` +
		`"Resource":` + mustJSON([]string{tableARN, tableARN + "/index/*"}) + `,` +
		`"Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":[{{json (printf "%s%s" ` +
		mustJSON(keyPrefix) + ` .TenantID)}}]}}}]}`
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func marshalPolicy(doc policyDocument) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
