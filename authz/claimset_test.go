package authz

import (
	"encoding/json"
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
	`{"esc":"a\"b\\c\/d\b\f\n\r\te","u":"\u00e9\u2028\ud83d\ude00","lone":"\ud800x","lowlone":"\udc00"}`,
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
		if !reflect.DeepEqual(map[string]any(got), want) {
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
	if err != nil || !reflect.DeepEqual(map[string]any(got), want) {
		t.Errorf("%d levels: %v", maxClaimDepth, err)
	}
	var c claimSet
	if err := c.UnmarshalJSON(deep(maxClaimDepth + 1)); err == nil {
		t.Errorf("%d levels read, want an error as encoding/json's", maxClaimDepth+1)
	}
}

// FuzzClaimSet holds the claims decoder to encoding/json: whatever
// json.Unmarshal reads into a map[string]any, it reads into a claimSet the
// same; what it refuses, so does the claimSet. Called on its own with any
// bytes, UnmarshalJSON never panics, and when it reads them they were a
// JSON object.
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
		case err == nil && !reflect.DeepEqual(map[string]any(got), want):
			t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
		}
		var direct claimSet
		if err := direct.UnmarshalJSON(data); err == nil {
			var v any
			if json.Unmarshal(data, &v) != nil {
				t.Fatalf("%q is not JSON, yet UnmarshalJSON read it as %#v", data, direct)
			}
			if _, ok := v.(map[string]any); !ok {
				t.Fatalf("%q is not an object, yet UnmarshalJSON read it", data)
			}
		}
	})
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
// golang-jwt reads claims: into MapClaims with encoding/json, and into a
// claimSet.
func BenchmarkClaimSet(b *testing.B) {
	payload, err := os.ReadFile(filepath.Join("testdata", "tokens", "cognito-access.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("MapClaims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeMap(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("claimSet", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeClaimSet(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
