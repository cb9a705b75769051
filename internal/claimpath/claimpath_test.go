package claimpath_test

import (
	"slices"
	"testing"

	"github.com/tenancykit/tenancy/internal/claimpath"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"tenant_id", []string{"tenant_id"}},
		{"realm_access.roles", []string{"realm_access", "roles"}},
		{`resource_access."notes.api".roles`, []string{"resource_access", "notes.api", "roles"}},
		{`"a.b"`, []string{"a.b"}},
		{`"a\"b".c`, []string{`a"b`, "c"}},
		{`"a\\b"`, []string{`a\b`}},
		{`"a\b"`, []string{`a\b`}}, // a backslash before anything else is itself
	} {
		got, err := claimpath.Split(tc.name)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Split(%s) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", ".", "a.", ".a", "a..b", `"a`, `"a"b`, `a"b"`, `"a".`} {
		if got, err := claimpath.Split(bad); err == nil {
			t.Errorf("Split(%s) = %q, want an error", bad, got)
		}
	}
}

func TestLookup(t *testing.T) {
	claims := map[string]any{
		"https://example.com/tenant_id": "acme",
		"resource_access": map[string]any{
			"notes.api": map[string]any{"roles": []any{"editor"}},
			"notes":     map[string]any{"roles": []any{"viewer"}},
		},
		"a.b": "top",
		"a":   map[string]any{"b": "nested"},
	}
	for _, tc := range []struct {
		name string
		want any
		ok   bool
	}{
		{"https://example.com/tenant_id", "acme", true},
		{`resource_access."notes.api".roles`, []any{"editor"}, true},
		{"resource_access.notes.roles", []any{"viewer"}, true},
		{"resource_access.notes.api.roles", nil, false}, // the dot is a path separator
		{"a.b", "top", true}, // the top-level claim first
		{`a."b"`, "nested", true},
		{"missing", nil, false},
		{`resource_access."notes.api`, nil, false},
	} {
		got, ok := claimpath.Lookup(claims, tc.name)
		if ok != tc.ok || !equal(got, tc.want) {
			t.Errorf("Lookup(%s) = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func equal(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok || bok {
		return aok && bok && slices.Equal(as, bs)
	}
	return a == b
}
