package awscreds_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/awscreds"
)

// The shipped documents are what the functions generate for the orders
// example's table and service role. Regenerate them with
// UPDATE_GOLDEN=1 go test -run Golden ./authz/awscreds/.
const (
	exampleTable   = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"
	exampleService = "arn:aws:iam::123456789012:role/orders-service"
)

func TestGoldenPolicies(t *testing.T) {
	perm, err := awscreds.PermissionPolicy(exampleTable, "TenantId", "")
	if err != nil {
		t.Fatal(err)
	}
	trust, err := awscreds.TrustPolicy(exampleService, "TenantId")
	if err != nil {
		t.Fatal(err)
	}
	for file, got := range map[string][]byte{"iam/permission-policy.json": perm, "iam/trust-policy.json": trust} {
		if os.Getenv("UPDATE_GOLDEN") == "1" {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var w, g any
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("%s differs from what is generated (-file +generated):\n%s", file, diff)
		}
	}
}

func TestPermissionPolicyShape(t *testing.T) {
	raw, err := awscreds.PermissionPolicy(exampleTable, "TenantId", "TENANT#")
	if err != nil {
		t.Fatal(err)
	}
	// Read as IAM reads it, into a shape of the test's own.
	var doc struct {
		Statement []struct {
			Effect    string
			Action    []string
			Resource  []string
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	allow, deny := doc.Statement[0], doc.Statement[1]
	if allow.Effect != "Allow" || deny.Effect != "Deny" {
		t.Fatalf("effects %q %q", allow.Effect, deny.Effect)
	}
	keys := allow.Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
	if diff := cmp.Diff([]any{"TENANT#${aws:PrincipalTag/TenantId}"}, keys); diff != "" {
		t.Errorf("LeadingKeys (-want +got):\n%s", diff)
	}
	for _, a := range allow.Action {
		if strings.Contains(a, "Scan") || strings.Contains(a, "PartiQL") {
			t.Errorf("allowed action %s reads across partitions", a)
		}
	}
	if !cmp.Equal(deny.Resource, allow.Resource) || !strings.Contains(strings.Join(deny.Action, ","), "dynamodb:Scan") {
		t.Errorf("deny statement %+v does not deny Scan on the same resources", deny)
	}
	if strings.Contains(string(raw), `\u0026`) || strings.Contains(string(raw), `\u003c`) {
		t.Error("policy has HTML-escaped characters")
	}
}

func TestPolicyArgumentErrors(t *testing.T) {
	if _, err := awscreds.PermissionPolicy("orders", "TenantId", ""); err == nil || !strings.Contains(err.Error(), "table ARN") {
		t.Errorf("bad table ARN: %v", err)
	}
	if _, err := awscreds.PermissionPolicy(exampleTable, "aws:TenantId", ""); err == nil {
		t.Error("reserved tag key accepted")
	}
	if _, err := awscreds.TrustPolicy("orders-service", "TenantId"); err == nil {
		t.Error("bad principal accepted")
	}
}

func TestSessionPolicyTemplate(t *testing.T) {
	tmpl := awscreds.SessionPolicy(exampleTable, "TENANT#")
	var probe any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(tmpl, `{{json (printf "%s%s" "TENANT#" .TenantID)}}`, `"x"`)), &probe); err != nil {
		t.Fatalf("template outside its action is not JSON: %v\n%s", err, tmpl)
	}
}
