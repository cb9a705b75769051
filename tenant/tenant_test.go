package tenant_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// tenantCmp compares Tenants by their exported fields; Tiers, whose fields
// are unexported, compare with ==.
var tenantCmp = cmp.Options{
	cmp.Comparer(func(a, b tenant.Tier) bool { return a == b }),
	cmpopts.IgnoreUnexported(tenant.Tenant{}),
}

func TestValidateID(t *testing.T) {
	// Every refused ID but the empty one contains "acme", so that the test
	// can check that the error text never repeats the ID.
	tests := []struct {
		name    string
		id      string
		wantErr bool
		reason  string // a part of IDError.Reason, when wantErr
	}{
		{name: "plain", id: "acme"},
		{name: "digits and punctuation", id: "acme-42_eu.west"},
		{name: "inner space", id: "acme corp"},
		{name: "unicode letters", id: "müller-ßäöü-東京"},
		{name: "128 bytes", id: "acme" + strings.Repeat("x", 124)},
		{name: "128 bytes of two-byte runes", id: strings.Repeat("é", 64)},
		{name: "empty", id: "", wantErr: true, reason: "empty"},
		{name: "129 bytes", id: "acme" + strings.Repeat("x", 125), wantErr: true, reason: "longer than 128 bytes"},
		{name: "129 bytes of runes", id: "acme" + strings.Repeat("é", 62) + "x", wantErr: true, reason: "longer than 128 bytes"},
		{name: "invalid UTF-8", id: "acme\xff", wantErr: true, reason: "UTF-8"},
		{name: "truncated rune", id: "acme\xc3", wantErr: true, reason: "UTF-8"},
		{name: "NUL", id: "acme\x00", wantErr: true, reason: "at byte 4"},
		{name: "newline", id: "acme\nadmin", wantErr: true, reason: "at byte 4"},
		{name: "carriage return", id: "ac\rme", wantErr: true, reason: "at byte 2"},
		{name: "tab", id: "ac\tme", wantErr: true, reason: "control"},
		{name: "DEL", id: "acme\x7f", wantErr: true, reason: "control"},
		{name: "C1 control NEL", id: "acme\u0085x", wantErr: true, reason: "control"},
		{name: "right-to-left override", id: "acme\u202Etxt.exe", wantErr: true, reason: "format"},
		{name: "zero width space", id: "ac\u200Bme", wantErr: true, reason: "format"},
		{name: "byte order mark", id: "\uFEFFacme", wantErr: true, reason: "format"},
		{name: "leading space", id: " acme", wantErr: true, reason: "white space"},
		{name: "trailing space", id: "acme ", wantErr: true, reason: "white space"},
		{name: "trailing no-break space", id: "acme\u00A0", wantErr: true, reason: "white space"},
		{name: "leading em space", id: "\u2003acme", wantErr: true, reason: "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tenant.ValidateID(tt.id)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("ValidateID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateID(%q) = nil, want an error", tt.id)
			}
			if !errors.Is(err, tenant.ErrInvalidID) {
				t.Errorf("errors.Is(%v, ErrInvalidID) = false", err)
			}
			var idErr *tenant.IDError
			if !errors.As(err, &idErr) {
				t.Fatalf("errors.As(%v, *IDError) = false", err)
			}
			if !strings.Contains(idErr.Reason, tt.reason) {
				t.Errorf("IDError.Reason = %q, want it to contain %q", idErr.Reason, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "tenant: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.id != "" && strings.Contains(err.Error(), "acme") {
				t.Errorf("error %q repeats the refused ID", err)
			}
		})
	}
}

// FuzzValidateID checks that whatever ValidateID accepts has the documented
// properties, and that whatever it refuses is refused with ErrInvalidID.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"acme", "", " a", "a ", "a b", "a\nb", "\u202E", "東京", strings.Repeat("x", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := tenant.ValidateID(id)
		if err != nil {
			if !errors.Is(err, tenant.ErrInvalidID) {
				t.Fatalf("ValidateID(%q) = %v, not wrapping ErrInvalidID", id, err)
			}
			return
		}
		if id == "" || len(id) > tenant.MaxIDLength || !utf8.ValidString(id) {
			t.Fatalf("ValidateID(%q) accepted an empty, long or invalid UTF-8 ID", id)
		}
		for _, r := range id {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("ValidateID(%q) accepted control or format character %U", id, r)
			}
		}
		first, _ := utf8.DecodeRuneInString(id)
		last, _ := utf8.DecodeLastRuneInString(id)
		if unicode.IsSpace(first) || unicode.IsSpace(last) {
			t.Fatalf("ValidateID(%q) accepted leading or trailing white space", id)
		}
	})
}

func TestNew(t *testing.T) {
	premium := tenant.DefaultTiers.MustLookup("premium")
	got, err := tenant.New("acme", premium)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got.ID != "acme" || got.Tier != premium || got.Subject != "" || got.Roles != nil || got.Scopes != nil {
		t.Errorf("New = %+v, want ID acme on premium and nothing else", got)
	}
	if got.IsZero() {
		t.Error("IsZero() = true for a tenant with an ID")
	}
	if got.Claims().Len() != 0 {
		t.Errorf("Claims().Len() = %d, want 0", got.Claims().Len())
	}

	bad, err := tenant.New("acme\n", premium)
	if !errors.Is(err, tenant.ErrInvalidID) {
		t.Fatalf("New(invalid) error = %v, want ErrInvalidID", err)
	}
	if !bad.IsZero() || !bad.Tier.IsZero() {
		t.Errorf("New(invalid) = %+v, want the zero Tenant", bad)
	}
	if !(tenant.Tenant{}).IsZero() {
		t.Error("zero Tenant: IsZero() = false")
	}
}

func TestContextRoundTrip(t *testing.T) {
	ctx := context.Background()
	if got, ok := tenant.FromContext(ctx); ok || !got.IsZero() {
		t.Fatalf("FromContext(empty) = %+v, %v; want zero, false", got, ok)
	}

	in := tenant.Tenant{
		ID:      "acme",
		Tier:    tenant.DefaultTiers.MustLookup("standard"),
		Subject: "user-1",
		Roles:   []string{"admin"},
		Scopes:  []string{"orders:read"},
	}
	ctx = tenant.NewContext(ctx, in)
	got, ok := tenant.FromContext(ctx)
	if !ok {
		t.Fatal("FromContext after NewContext: ok = false")
	}
	if diff := cmp.Diff(in, got, tenantCmp); diff != "" {
		t.Errorf("FromContext mismatch (-want +got):\n%s", diff)
	}

	// The context holds a copy: changing the caller's value afterwards does
	// not change what later readers see.
	in.ID = "globex"
	if got, _ := tenant.FromContext(ctx); got.ID != "acme" {
		t.Errorf("FromContext ID = %q after the caller changed its copy, want acme", got.ID)
	}

	// A nested context sees the innermost tenant.
	inner := tenant.NewContext(ctx, tenant.Tenant{ID: "globex"})
	if got, _ := tenant.FromContext(inner); got.ID != "globex" {
		t.Errorf("inner FromContext ID = %q, want globex", got.ID)
	}
	if got, _ := tenant.FromContext(ctx); got.ID != "acme" {
		t.Errorf("outer FromContext ID = %q after nesting, want acme", got.ID)
	}
}

func TestHasRoleHasScope(t *testing.T) {
	tn := tenant.Tenant{ID: "acme", Roles: []string{"admin", "billing"}, Scopes: []string{"orders:read", "orders:write"}}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"role present", tn.HasRole("billing"), true},
		{"role absent", tn.HasRole("owner"), false},
		{"role case-sensitive", tn.HasRole("Admin"), false},
		{"role empty", tn.HasRole(""), false},
		{"scope present", tn.HasScope("orders:write"), true},
		{"scope absent", tn.HasScope("orders:delete"), false},
		{"scope prefix is not a match", tn.HasScope("orders"), false},
		{"zero tenant role", tenant.Tenant{}.HasRole("admin"), false},
		{"zero tenant scope", tenant.Tenant{}.HasScope("orders:read"), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestWithClaims(t *testing.T) {
	orig := tenant.Tenant{ID: "acme"}
	withClaims := orig.WithClaims(tenant.NewClaims(map[string]any{"sub": "user-1", "azp": "cli"}))

	if got, ok := withClaims.Claims().String("sub"); !ok || got != "user-1" {
		t.Errorf("Claims().String(sub) = %q, %v; want user-1, true", got, ok)
	}
	if n := withClaims.Claims().Len(); n != 2 {
		t.Errorf("Claims().Len() = %d, want 2", n)
	}
	if withClaims.ID != "acme" {
		t.Errorf("WithClaims changed the ID to %q", withClaims.ID)
	}
	// WithClaims returns a copy; the receiver keeps no claims.
	if n := orig.Claims().Len(); n != 0 {
		t.Errorf("original Claims().Len() = %d after WithClaims, want 0", n)
	}
	// Claims travel through the context with the tenant.
	got, _ := tenant.FromContext(tenant.NewContext(context.Background(), withClaims))
	if v, ok := got.Claims().String("azp"); !ok || v != "cli" {
		t.Errorf("claims after context round trip: azp = %q, %v; want cli, true", v, ok)
	}
}

type otherKey struct{}

// TestFromContextOfAState: a request's state answers with the tenant it
// holds, and without one passes on to the context the request came with,
// whether the state is the context itself or one derived from it.
func TestFromContextOfAState(t *testing.T) {
	parent := tenant.NewContext(context.Background(), tenant.Tenant{ID: "from-parent"})
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(parent)
	_, r, st, _ := request.Enter(request.Stack, httptest.NewRecorder(), r)
	derived := context.WithValue(r.Context(), otherKey{}, "other")
	for _, ctx := range []context.Context{st, derived} {
		if got, ok := tenant.FromContext(ctx); !ok || got.ID != "from-parent" {
			t.Errorf("state without a tenant: FromContext = %q, %v; want the parent's", got.ID, ok)
		}
	}
	own := tenant.Tenant{ID: "acme", Source: tenant.SourceToken}
	st.SetTenant(&own, "tok")
	for _, ctx := range []context.Context{st, derived} {
		if got, ok := tenant.FromContext(ctx); !ok || got.ID != "acme" {
			t.Errorf("state with a tenant: FromContext = %q, %v; want the state's", got.ID, ok)
		}
		if tok, _ := tenant.TokenFromContext(ctx); tok != "tok" {
			t.Errorf("TokenFromContext = %q, want the state's", tok)
		}
	}
	if got, _ := tenant.FromContext(tenant.NewContext(st, tenant.Tenant{ID: "nearer"})); got.ID != "nearer" {
		t.Errorf("a tenant put nearer the handler: FromContext = %q, want it", got.ID)
	}
}

// validateByTables is ValidateID's character check as the Unicode tables
// say it, for every character.
func validateByTables(id string) string {
	for i, r := range id {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return "control"
		}
		if unicode.IsSpace(r) && (i == 0 || i+utf8.RuneLen(r) == len(id)) {
			return "space"
		}
	}
	return ""
}

// TestValidateIDOfASCII: the ASCII shortcut of ValidateID refuses exactly
// what the Unicode tables do, for every ASCII character at the start, in
// the middle and at the end of an ID, among other characters or not.
func TestValidateIDOfASCII(t *testing.T) {
	for r := rune(0); r < 0x80; r++ {
		c := string(r)
		for _, id := range []string{c, c + "acme", "ac" + c + "me", "acme" + c, "é" + c + "é", c + "é", "é" + c} {
			err := tenant.ValidateID(id)
			var got string
			switch {
			case err == nil:
			case strings.Contains(err.Error(), "control"):
				got = "control"
			case strings.Contains(err.Error(), "white space"):
				got = "space"
			default:
				got = err.Error()
			}
			if want := validateByTables(id); got != want {
				t.Errorf("ValidateID(%q) refused for %q, want %q", id, got, want)
			}
		}
	}
}
