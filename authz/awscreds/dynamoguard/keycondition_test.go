package dynamoguard

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeyConditionParse(t *testing.T) {
	type eq = guardKeyEquality
	tests := []struct {
		expr string
		want []eq
	}{
		{"pk = :v", []eq{{"pk", ":v"}}},
		{"#pk = :v", []eq{{"#pk", ":v"}}},
		{"#pk=:v", []eq{{"#pk", ":v"}}},
		{":v = #pk", []eq{{"#pk", ":v"}}},
		{":v = tenant_id", []eq{{"tenant_id", ":v"}}},
		{"#pk = :v AND begins_with(#sk, :p)", []eq{{"#pk", ":v"}}},
		{"#pk = :v and BEGINS_WITH ( #sk , :p )", []eq{{"#pk", ":v"}}},
		{"begins_with(sk, :p) AND pk = :v", []eq{{"pk", ":v"}}},
		{"#sk BETWEEN :a AND :b AND #pk = :v", []eq{{"#pk", ":v"}}},
		{"#pk = :v AND #sk between :a and :b", []eq{{"#pk", ":v"}}},
		{"(#pk = :v) AND (#sk > :s)", []eq{{"#pk", ":v"}}},
		{"((#pk = :v)) AND ((#sk <= :s))", []eq{{"#pk", ":v"}}},
		{"(#pk = :v AND #sk >= :s)", []eq{{"#pk", ":v"}}},
		{"\t#pk\n=\r\n:v   AND\t#sk < :s ", []eq{{"#pk", ":v"}}},
		{"#pk = :v AND #sk = :s", []eq{{"#pk", ":v"}, {"#sk", ":s"}}},
		{"#pk = :v AND #sk <> :s", []eq{{"#pk", ":v"}}},
		{"#a = #b", nil},
		{":a = :b", nil},
		{"#sk > :s", nil},
		{"(#pk=:v)and(#sk=:s)", []eq{{"#pk", ":v"}, {"#sk", ":s"}}},
		{"Tenant_ID_2 = :V_1", []eq{{"Tenant_ID_2", ":V_1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := guardParseKeyCondition(tt.expr, nil)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(guardKeyEquality{})); diff != "" {
				t.Errorf("equalities (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeyConditionParseErrors(t *testing.T) {
	tests := []struct {
		expr string
		want string // in the error
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"#pk = :v OR #sk = :s", "OR is not allowed"},
		{"#pk = :v or #pk = :w", "OR is not allowed"},
		{"NOT #pk = :v", "NOT is not allowed"},
		{"#pk = ", "unexpected end"},
		{"#pk :v", "unexpected token"},
		{"#pk", "unexpected end"},
		{"a.b = :v", "unexpected character"},
		{"a[0] = :v", "unexpected character"},
		{"'acme' = pk", "unexpected character"},
		{"#pk = :v AND", "unexpected end"},
		{"(#pk = :v", "unexpected end"},
		{"#pk = :v)", "unexpected token"},
		{"()", "unexpected token"},
		{"begins_with #sk", "unexpected token"},
		{"begins_with(#sk :p)", "unexpected token"},
		{"begins_with(#sk, :p", "unexpected end"},
		{"# = :v", "unexpected character"},
		{"#pk = :", "unexpected character"},
		{"contains(#a, :v)", "unexpected token"},
		{"attribute_exists(#pk)", "unexpected token"},
		{"#pk IN (:a, :b)", "unexpected token"},
		{"#sk BETWEEN :a OR :b", "OR is not allowed"},
		{"#sk BETWEEN :a", "unexpected end"},
		{"#pk = :v :w", "unexpected token"},
		{"and = :v", "unexpected token"},
		{"#pk = between", "unexpected token"},
		{"#pk == :v", "unexpected token"},
		{"#pk = :v;", "unexpected character"},
		{"pk = :v AND ¤sk = :s", "unexpected character"},
		{strings.Repeat("(", 40) + "#pk = :v" + strings.Repeat(")", 40), "nested too deep"},
		{strings.Repeat("#a = :v AND ", guardMaxKeyEqualities) + "#pk = :v", "too many comparisons"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := guardParseKeyCondition(tt.expr, nil)
			if err == nil {
				t.Fatalf("no error; equalities %v", got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestKeyConditionNesting(t *testing.T) {
	expr := strings.Repeat("(", guardMaxKeyConditionDepth) + "#pk = :v" + strings.Repeat(")", guardMaxKeyConditionDepth)
	got, err := guardParseKeyCondition(expr, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("%d levels: %v, %v", guardMaxKeyConditionDepth, got, err)
	}
}

// The error names positions only, never an operand: placeholders are not
// secret, but an error that never quotes the expression cannot leak
// whatever a caller put in it.
func TestKeyConditionErrorQuotesNothing(t *testing.T) {
	_, err := guardParseKeyCondition("#pk = :v OR #SECRETNAME = :SECRETVALUE", nil)
	if err == nil {
		t.Fatal("no error")
	}
	if s := err.Error(); strings.Contains(s, "SECRET") {
		t.Errorf("error %q quotes the expression", s)
	}
}

func TestKeyConditionAllocations(t *testing.T) {
	expr := "#sk BETWEEN :a AND :b AND (#pk = :v)"
	allocs := testing.AllocsPerRun(100, func() {
		var buf [4]guardKeyEquality
		eqs, err := guardParseKeyCondition(expr, buf[:0])
		if err != nil || len(eqs) != 1 {
			t.Fatal("parse failed") // not eqs: printing it would move buf to the heap
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per parse, want 0", allocs)
	}
}

func FuzzKeyCondition(f *testing.F) {
	for _, seed := range []string{
		"pk = :v",
		"#pk = :v AND begins_with(#sk, :p)",
		"#sk BETWEEN :a AND :b AND #pk = :v",
		":v = #pk",
		"((#pk = :v)) AND (#sk > :s)",
		"#pk = :v OR #sk = :s",
		"NOT #pk = :v",
		"begins_with(#sk, :p",
		"a.b[0] = :v",
		"#pk <> :v AND #sk <= :s AND #x >= :y",
		strings.Repeat("(", 40),
		"",
		"\x00\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		eqs, err := guardParseKeyCondition(expr, nil)
		if err != nil {
			if len(eqs) != 0 {
				t.Fatalf("error %v with equalities %v", err, eqs)
			}
			return
		}
		for _, eq := range eqs {
			if eq.name == "" || eq.name[0] == ':' || !strings.Contains(expr, eq.name) {
				t.Fatalf("bad name %q in %q", eq.name, expr)
			}
			if len(eq.value) < 2 || eq.value[0] != ':' || !strings.Contains(expr, eq.value) {
				t.Fatalf("bad value %q in %q", eq.value, expr)
			}
		}
	})
}
