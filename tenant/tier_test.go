package tenant_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/tenant"
)

// names returns the names of ts, for comparing lists of tiers.
func names(ts []tenant.Tier) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.String())
	}
	return out
}

func TestDefaultTiers(t *testing.T) {
	want := []string{"basic", "standard", "premium", "platinum"}
	if diff := cmp.Diff(want, tenant.DefaultTiers.Names()); diff != "" {
		t.Errorf("Names() mismatch (-want +got):\n%s", diff)
	}
	all := tenant.DefaultTiers.All()
	if diff := cmp.Diff(want, names(all)); diff != "" {
		t.Errorf("All() mismatch (-want +got):\n%s", diff)
	}
	for i, tier := range all {
		if tier.Rank() != i+1 {
			t.Errorf("%s.Rank() = %d, want %d", tier, tier.Rank(), i+1)
		}
		if tier.IsZero() {
			t.Errorf("%s.IsZero() = true", tier)
		}
	}

	// All and Names return copies: changing them leaves the set alone.
	all[0] = tenant.Tier{}
	tenant.DefaultTiers.Names()[0] = "free"
	if diff := cmp.Diff(want, names(tenant.DefaultTiers.All())); diff != "" {
		t.Errorf("All() after changing a returned slice (-want +got):\n%s", diff)
	}
	if got := tenant.DefaultTiers.Names()[0]; got != "basic" {
		t.Errorf("Names()[0] = %q after changing a returned slice, want basic", got)
	}
}

func TestTiersLookup(t *testing.T) {
	tests := []struct {
		name     string
		wantName string
		wantRank int
		wantOK   bool
	}{
		{"premium", "premium", 3, true},
		{"PREMIUM", "premium", 3, true},
		{"Platinum", "platinum", 4, true},
		{"basic", "basic", 1, true},
		{"gold", "", 0, false},
		{"", "", 0, false},
		{" premium", "", 0, false},
	}
	for _, tt := range tests {
		got, ok := tenant.DefaultTiers.Lookup(tt.name)
		if ok != tt.wantOK || got.String() != tt.wantName || got.Rank() != tt.wantRank {
			t.Errorf("Lookup(%q) = %q rank %d, %v; want %q rank %d, %v", tt.name, got.String(), got.Rank(), ok, tt.wantName, tt.wantRank, tt.wantOK)
		}
	}

	// Two lookups of the same plan yield equal values, whatever the case.
	a, _ := tenant.DefaultTiers.Lookup("standard")
	b, _ := tenant.DefaultTiers.Lookup("STANDARD")
	if a != b {
		t.Errorf("Lookup(standard) = %#v, Lookup(STANDARD) = %#v; want equal", a, b)
	}

	// A custom set keeps the spelling it was given.
	custom := tenant.MustTiers("Free", "Pro")
	if got, ok := custom.Lookup("pro"); !ok || got.String() != "Pro" {
		t.Errorf("custom Lookup(pro) = %q, %v; want Pro, true", got.String(), ok)
	}
}

func TestTiersParse(t *testing.T) {
	got, err := tenant.DefaultTiers.Parse("Premium")
	if err != nil || got.String() != "premium" {
		t.Errorf("Parse(Premium) = %q, %v; want premium, nil", got.String(), err)
	}

	got, err = tenant.DefaultTiers.Parse("gold")
	if !errors.Is(err, tenant.ErrUnknownTier) {
		t.Fatalf("Parse(gold) error = %v, want ErrUnknownTier", err)
	}
	if !got.IsZero() {
		t.Errorf("Parse(gold) tier = %q, want the zero Tier", got)
	}
	msg := err.Error()
	for _, want := range []string{"tenant: unknown tier", `"gold"`, "basic, standard, premium, platinum"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Parse(gold) error %q does not contain %q", msg, want)
		}
	}
}

func TestTiersMustLookup(t *testing.T) {
	if got := tenant.DefaultTiers.MustLookup("basic"); got.String() != "basic" {
		t.Errorf("MustLookup(basic) = %q", got)
	}
	err := panicValue(t, func() { tenant.DefaultTiers.MustLookup("gold") })
	if e, ok := err.(error); !ok || !errors.Is(e, tenant.ErrUnknownTier) {
		t.Errorf("MustLookup(gold) panicked with %v, want an error wrapping ErrUnknownTier", err)
	}
}

func TestNewTiers(t *testing.T) {
	ts, err := tenant.NewTiers("free", "pro", "enterprise")
	if err != nil {
		t.Fatalf("NewTiers: %v", err)
	}
	if diff := cmp.Diff([]string{"free", "pro", "enterprise"}, ts.Names()); diff != "" {
		t.Errorf("Names() mismatch (-want +got):\n%s", diff)
	}
	if ts.Lowest().String() != "free" {
		t.Errorf("Lowest() = %q, want free", ts.Lowest())
	}

	bad := []struct {
		name  string
		tiers []string
	}{
		{"no names", nil},
		{"empty name", []string{"free", ""}},
		{"duplicate", []string{"free", "pro", "free"}},
		{"duplicate ignoring case", []string{"free", "Pro", "PRO"}},
		{"space", []string{"free", "pro plus"}},
		{"tab", []string{"free\t"}},
		{"newline", []string{"pro\n"}},
		{"NUL", []string{"pro\x00"}},
		{"DEL", []string{"pro\x7f"}},
		// The doc promises "without white space" and the error says "white
		// space or control characters": the Unicode ones count too.
		{"C1 control NEL", []string{"pro\u0085"}},
		{"no-break space", []string{"pro\u00A0plus"}},
		{"em space", []string{"pro\u2003plus"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := tenant.NewTiers(tt.tiers...)
			if err == nil {
				t.Fatalf("NewTiers(%q) = %q, nil; want an error", tt.tiers, ts.Names())
			}
			if ts != nil {
				t.Errorf("NewTiers(%q) returned a set with its error", tt.tiers)
			}
			if !strings.HasPrefix(err.Error(), "tenant: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestMustTiers(t *testing.T) {
	if got := tenant.MustTiers("a", "b").Names(); !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("MustTiers(a, b).Names() = %q", got)
	}
	v := panicValue(t, func() { tenant.MustTiers("a", "A") })
	if err, ok := v.(error); !ok || !strings.HasPrefix(err.Error(), "tenant: ") {
		t.Errorf("MustTiers(a, A) panicked with %v, want a tenant: error", v)
	}
	v = panicValue(t, func() { tenant.MustTiers() })
	if err, ok := v.(error); !ok || !strings.HasPrefix(err.Error(), "tenant: ") {
		t.Errorf("MustTiers() panicked with %v, want a tenant: error", v)
	}
}

func TestTierAtLeast(t *testing.T) {
	// Every pair, the zero Tier included: x.AtLeast(y) exactly when x's
	// rank is not below y's.
	tiers := append([]tenant.Tier{{}}, tenant.DefaultTiers.All()...)
	for i, x := range tiers {
		for j, y := range tiers {
			if got, want := x.AtLeast(y), i >= j; got != want {
				t.Errorf("%q.AtLeast(%q) = %v, want %v", x, y, got, want)
			}
		}
	}

	premium := tenant.DefaultTiers.MustLookup("premium")
	if !tenant.DefaultTiers.MustLookup("platinum").AtLeast(premium) {
		t.Error("platinum.AtLeast(premium) = false")
	}
	if tenant.DefaultTiers.MustLookup("standard").AtLeast(premium) {
		t.Error("standard.AtLeast(premium) = true")
	}
	if (tenant.Tier{}).AtLeast(tenant.DefaultTiers.Lowest()) {
		t.Error("zero Tier is at least the lowest tier")
	}
}

func TestTierZero(t *testing.T) {
	var z tenant.Tier
	if !z.IsZero() || z.String() != "" || z.String() != "" || z.Rank() != 0 {
		t.Errorf("zero Tier: IsZero %v, Name %q, String %q, Rank %d", z.IsZero(), z.String(), z.String(), z.Rank())
	}
	if !z.AtLeast(z) {
		t.Error("zero Tier is not at least itself")
	}
	if b, err := z.MarshalText(); err != nil || len(b) != 0 {
		t.Errorf("zero MarshalText() = %q, %v; want empty, nil", b, err)
	}
	if _, ok := tenant.DefaultTiers.Lookup(z.String()); ok {
		t.Error("the zero Tier's name looks up to a tier")
	}
}

func TestTiersFrom(t *testing.T) {
	tests := []struct {
		min  tenant.Tier
		want []string
	}{
		{tenant.DefaultTiers.MustLookup("premium"), []string{"premium", "platinum"}},
		{tenant.DefaultTiers.MustLookup("platinum"), []string{"platinum"}},
		{tenant.DefaultTiers.MustLookup("basic"), []string{"basic", "standard", "premium", "platinum"}},
		{tenant.Tier{}, []string{"basic", "standard", "premium", "platinum"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, names(tenant.DefaultTiers.From(tt.min))); diff != "" {
			t.Errorf("From(%q) mismatch (-want +got):\n%s", tt.min, diff)
		}
	}
}

func TestTiersLowest(t *testing.T) {
	if got := tenant.DefaultTiers.Lowest(); got.String() != "basic" || got.Rank() != 1 {
		t.Errorf("DefaultTiers.Lowest() = %q rank %d, want basic rank 1", got, got.Rank())
	}
	if got := tenant.MustTiers("only").Lowest(); got.String() != "only" {
		t.Errorf("Lowest() of a one-tier set = %q, want only", got)
	}
}

func TestTierMarshalText(t *testing.T) {
	b, err := tenant.DefaultTiers.MustLookup("PREMIUM").MarshalText()
	if err != nil || string(b) != "premium" {
		t.Errorf("MarshalText() = %q, %v; want premium, nil", b, err)
	}

	// encoding/json uses MarshalText, for values and for map keys.
	js, err := json.Marshal(struct {
		Tier  tenant.Tier
		Zero  tenant.Tier
		Quota map[tenant.Tier]int
	}{
		Tier:  tenant.DefaultTiers.MustLookup("standard"),
		Quota: map[tenant.Tier]int{tenant.DefaultTiers.MustLookup("basic"): 10},
	})
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if want := `{"Tier":"standard","Zero":"","Quota":{"basic":10}}`; string(js) != want {
		t.Errorf("json.Marshal = %s, want %s", js, want)
	}
}

// panicValue runs f and returns what it panicked with; the test fails when
// f returns normally.
func panicValue(t *testing.T, f func()) (v any) {
	t.Helper()
	defer func() {
		v = recover()
		if v == nil {
			t.Error("function did not panic")
		}
	}()
	f()
	return nil
}
