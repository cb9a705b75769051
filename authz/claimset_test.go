package authz

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// claimSetCases are payloads whose reading must be MapClaims' exactly:
// what providers issue, and what JSON allows that a decoder of its own
// could read differently.
var claimSetCases = []string{
	`{}`,
	` { "a" : 1 , "b" : [ ] , "c" : { } } `,
	"{\t\"a\":\r\n1}",
	`{"sub":"alice","exp":1764503600,"iat":1764500000,"aud":["api","billing"],"email_verified":true,"nonce":null}`,
	`{"n":-0,"f":1.5e3,"g":-2.25E-2,"h":0.1,"big":1e308,"small":5e-324,"int":9007199254740993}`,
	// Below float64's least, a number is a zero of its sign, not an error.
	`{"under":1e-400,"negunder":-1e-400,"halfleast":2.4703282292062327e-324,"longexp":1e-99999999999999999999,"zeroexp":0e99999999999}`,
	`{"esc":"a\"b\\c\/d\b\f\n\r\te","u":"\u00e9\u2028\ud83d\ude00","lone":"\ud800x","lowlone":"\udc00"}`,
	`{"upper":"\u00C9\uD83D\uDE00\uFFFD","mixed":"\uDbfF\udFfF","twohigh":"\ud800\ud800\udc00","highthenA":"\ud800\u0041","reversed":"\udc00\ud800","highthenslash":"\ud800\\","\uD834\uDD1E":"key"}`,
	`{"\u0061":1,"a\u0000b":2}`,
	"{\"utf8\":\"h\u00e9llo \u4e16\u754c \U0001F600\",\"replacement\":\"\uFFFD\"}",
	"{\"bad\":\"\xff\xfe\",\"short\":\"\xe4\xb8\",\"key\xff\":1,\"surrogate\":\"\xed\xa0\x80\"}",
	`{"a":1,"a":"two","n":{"x":1},"n":{"y":2}}`,
	`{"resource_access":{"notes.api":{"roles":["reader","writer"]}},"realm_access":{"roles":[]}}`,
	`{"nested":[[1,[2,[3,{"k":[true,false,null]}]]],{"":""}]}`,
	`{"":1,"del":"\u007f","raw del":"` + "\x7f" + `"}`,
}

// claimSetErrors are payloads encoding/json refuses to read into MapClaims
// although they are valid JSON (a number out of range, not an object).
var claimSetErrors = []string{
	`{"exp":1e400}`,
	`{"a":[-1e999]}`,
	`[]`,
	`"claims"`,
	`1`,
	`true`,
}

func TestClaimSetReadsAsMapClaims(t *testing.T) {
	for _, payload := range append(claimSetCases, tokenPayloads(t)...) {
		got, err := decodeClaimSet([]byte(payload))
		want, wantErr := decodeMap([]byte(payload))
		if wantErr != nil {
			t.Fatalf("encoding/json refused %q: %v", payload, wantErr)
		}
		if err != nil {
			t.Errorf("%q: %v, want %v", payload, err, want)
			continue
		}
		if !sameJSON(map[string]any(got), want) {
			t.Errorf("%q:\n got %#v\nwant %#v", payload, got, want)
		}
	}
	for _, payload := range claimSetErrors {
		if _, err := decodeMap([]byte(payload)); err == nil {
			t.Fatalf("encoding/json read %q; the case is wrong", payload)
		}
		if got, err := decodeClaimSet([]byte(payload)); err == nil {
			t.Errorf("%q read as %#v, want an error as encoding/json's", payload, got)
		}
	}
	// The claimSet's own decoder ran, not encoding/json's in its place.
	if _, err := decodeClaimSet([]byte(`{"exp":1e400}`)); err == nil || !strings.Contains(err.Error(), "out of the range of a float64") {
		t.Errorf("the claimSet's error for 1e400 is %v, want its own", err)
	}
}

// TestClaimSetInvalidJSON: called on its own with text that is not JSON
// (encoding/json never does), UnmarshalJSON refuses it rather than read
// it or panic.
func TestClaimSetInvalidJSON(t *testing.T) {
	for _, payload := range []string{
		``, ` `, `{`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{a:1}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":1e}`, `{"a":-}`, `{"a":0x10}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":falsey}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"a":"b}`,
		`{"a":"b\`, "{\"a\":\"b\nc\"}", `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":1}x`, `{"a":1}{}`,
		`{"a":1,"a"}`, `{"a":{"b":1}`, `{"a":[}`,
	} {
		if json.Valid([]byte(payload)) {
			t.Fatalf("%q is valid JSON; the case is wrong", payload)
		}
		var c claimSet
		if err := c.UnmarshalJSON([]byte(payload)); err == nil {
			t.Errorf("%q read as %#v, want an error", payload, c)
		}
	}
}

// TestClaimSetDepth: nesting is bounded as encoding/json bounds it, and
// the deepest it allows reads the same.
func TestClaimSetDepth(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	allowed := deep(maxClaimDepth)
	want, err := decodeMap(allowed)
	if err != nil {
		t.Fatalf("encoding/json refused %d levels: %v", maxClaimDepth, err)
	}
	got, err := decodeClaimSet(allowed)
	if err != nil || !sameJSON(map[string]any(got), want) {
		t.Errorf("%d levels: %v", maxClaimDepth, err)
	}
	var c claimSet
	if err := c.UnmarshalJSON(deep(maxClaimDepth + 1)); err == nil {
		t.Errorf("%d levels read, want an error as encoding/json's", maxClaimDepth+1)
	}
}

// FuzzClaimSet holds the claims decoder to encoding/json: whatever
// json.Unmarshal reads into a map[string]any, it reads into a claimSet the
// same, to the sign of a zero; what it refuses, so does the claimSet.
// Called on its own with any bytes, UnmarshalJSON never panics, reads them
// only when they are a JSON object (white space around it allowed) and
// reads such an object as through json.Unmarshal.
func FuzzClaimSet(f *testing.F) {
	for _, p := range append(append(claimSetCases, claimSetErrors...), tokenPayloads(f)...) {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := decodeMap(data)
		got, err := decodeClaimSet(data)
		switch {
		case (err == nil) != (wantErr == nil):
			t.Fatalf("%q: claimSet error %v, encoding/json's %v", data, err, wantErr)
		case err == nil && !sameJSON(map[string]any(got), want):
			t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
		}
		object := json.Valid(data) && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
		var direct claimSet
		derr := direct.UnmarshalJSON(data)
		switch {
		case !object && derr == nil:
			t.Fatalf("%q is not a JSON object, yet UnmarshalJSON read it as %#v", data, direct)
		case object && (derr == nil) != (err == nil):
			t.Fatalf("%q: UnmarshalJSON on its own: error %v, through json.Unmarshal %v", data, derr, err)
		case object && derr == nil && !sameJSON(map[string]any(direct), want):
			t.Fatalf("%q: UnmarshalJSON on its own:\n got %#v\nwant %#v", data, direct, want)
		}
	})
}

// sameJSON reports whether a and b, decoded JSON, are the same: the same
// types and values, floats to the bit (-0 is not 0), which
// reflect.DeepEqual does not tell apart.
func sameJSON(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || (a == nil) != (b == nil) || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || (a == nil) != (b == nil) || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameJSON(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b) && a == b
}

// TestSameJSON: the comparison the claimSet tests make tells apart what
// they need it to.
func TestSameJSON(t *testing.T) {
	negZero := math.Copysign(0, -1)
	for _, tc := range []struct {
		a, b any
		same bool
	}{
		{map[string]any{"n": 0.0}, map[string]any{"n": 0.0}, true},
		{map[string]any{"n": 0.0}, map[string]any{"n": negZero}, false},
		{[]any{negZero}, []any{0.0}, false},
		{map[string]any{"a": []any{}}, map[string]any{"a": []any(nil)}, false},
		{map[string]any{"a": "1"}, map[string]any{"a": 1.0}, false},
		{map[string]any{"a": nil}, map[string]any{"b": nil}, false},
		{map[string]any{"a": map[string]any{"b": []any{true, nil, "x"}}}, map[string]any{"a": map[string]any{"b": []any{true, nil, "x"}}}, true},
	} {
		if got := sameJSON(tc.a, tc.b); got != tc.same {
			t.Errorf("sameJSON(%#v, %#v) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// decodeClaimSet reads data as golang-jwt reads a payload into claims it
// is given: json.Unmarshal into the Claims interface, which holds a
// *claimSet.
func decodeClaimSet(data []byte) (claimSet, error) {
	c := make(claimSet)
	var claims jwt.Claims = &c
	err := json.Unmarshal(data, &claims)
	return c, err
}

// decodeMap reads data as golang-jwt reads it into MapClaims. It decodes
// into a copy of the map it was given: "null" sets the copy to nil and
// leaves the token's claims empty, as a claimSet leaves them.
func decodeMap(data []byte) (map[string]any, error) {
	claims := map[string]any{}
	c := claims
	err := json.Unmarshal(data, &c)
	return claims, err
}

// tokenPayloads are the payloads of testdata/tokens: what Cognito, Auth0,
// Keycloak and Entra ID issue.
func tokenPayloads(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "tokens", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no token payloads in testdata/tokens: %v", err)
	}
	var out []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// BenchmarkClaimSet reads the payload of a Cognito access token as
// golang-jwt reads claims, with json.Unmarshal: into MapClaims, and into a
// claimSet; and as parseToken reads them, with decodeObject alone. The escaped ones read it as an issuer that escapes "/" writes
// it (PHP's json_encode does by default), with a URL for its issuer.
func BenchmarkClaimSet(b *testing.B) {
	payload, err := os.ReadFile(filepath.Join("testdata", "tokens", "cognito-access.json"))
	if err != nil {
		b.Fatal(err)
	}
	escaped := []byte(strings.ReplaceAll(strings.ReplaceAll(string(payload), "ISSUER", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"), "/", `\/`))
	for _, p := range []struct {
		prefix  string
		payload []byte
	}{{"", payload}, {"escaped/", escaped}} {
		b.Run(p.prefix+"MapClaims", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeMap(p.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.prefix+"claimSet", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeClaimSet(p.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.prefix+"decodeObject", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeObject(p.payload, make(claimSet, claimsHint)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
