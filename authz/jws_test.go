package authz

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The oracle's and parseToken's settings in these tests: golang-jwt's
// Parser with the options NewVerifier gives its Validator, and strict
// base64.
var (
	jwsSecret = []byte("jws-test-secret-of-32-bytes-long")
	jwsNow    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	jwsOpts   = []jwt.ParserOption{
		jwt.WithIssuer("https://issuer.example/"), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(time.Second), jwt.WithTimeFunc(func() time.Time { return jwsNow }),
	}
	jwsValidator = jwt.NewValidator(jwsOpts...)
	jwsOracle    = jwt.NewParser(append(jwsOpts, jwt.WithStrictDecoding())...)
)

// jwsKeyfunc gives the HMAC secret for HS256 and refuses every other
// algorithm, as a Verifier's keyfunc refuses those it does not allow.
func jwsKeyfunc(tok *jwt.Token) (any, error) {
	if tok.Method.Alg() != "HS256" {
		return nil, ErrAlgorithm
	}
	return jwsSecret, nil
}

// signJWS makes a compact JWS of header and payload, texts given as they
// are, signed with HS256 (whatever the header says).
func signJWS(header, payload string) string {
	text := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, jwsSecret)
	mac.Write([]byte(text))
	return text + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// signedWithBreak is signJWS's token with a line break at offset at of the
// signed text, which base64 decoding skips, signed with it.
func signedWithBreak(header, payload string, at int) string {
	text := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	at %= len(text) + 1
	text = text[:at] + "\n" + text[at:]
	mac := hmac.New(sha256.New, jwsSecret)
	mac.Write([]byte(text))
	return text + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// jwsClass is the golang-jwt error an error of parsing a token is, or nil.
func jwsClass(err error) error {
	for _, class := range []error{jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid, jwt.ErrTokenInvalidClaims} {
		if errors.Is(err, class) {
			return class
		}
	}
	return err
}

// compareWithGolangJWT parses token with parseToken and with golang-jwt's
// Parser.ParseWithClaims, and fails t unless both accept it with the same
// header and claims, or both refuse it with the same class of error, and
// with the same header and claims when neither found it malformed.
// The one difference allowed: a header or payload of JSON null, which
// golang-jwt reads as empty and parseToken refuses as malformed (RFC 7519
// wants an object).
func compareWithGolangJWT(t *testing.T, token string) {
	t.Helper()
	claims := make(claimSet)
	got, err := parseToken(token, claims, jwsKeyfunc, jwsValidator)
	oracleClaims := jwt.MapClaims{}
	want, wantErr := jwsOracle.ParseWithClaims(token, oracleClaims, jwsKeyfunc)
	switch {
	case err == nil && wantErr == nil:
		if !got.Valid || !sameJSON(map[string]any(claims), map[string]any(oracleClaims)) || !sameJSON(got.Header, want.Header) {
			t.Fatalf("%q: parseToken read header %#v claims %#v; golang-jwt %#v, %#v", token, got.Header, claims, want.Header, oracleClaims)
		}
		if got.Method != want.Method || string(got.Signature) != string(want.Signature) || got.Raw != token {
			t.Fatalf("%q: parseToken's token differs from golang-jwt's: %+v, %+v", token, got, want)
		}
	case jwsNull(token):
		if err == nil || !errors.Is(err, jwt.ErrTokenMalformed) {
			t.Fatalf("%q, with a null header or payload: %v, want malformed", token, err)
		}
	case jwsClass(err) != jwsClass(wantErr):
		t.Fatalf("%q: parseToken: %v; golang-jwt: %v", token, err, wantErr)
	case !errors.Is(err, jwt.ErrTokenMalformed):
		// Both refused it after decoding it: what the keyfunc and the
		// Validator saw must be the same too.
		if !sameJSON(map[string]any(claims), map[string]any(oracleClaims)) || !sameJSON(got.Header, want.Header) ||
			got.Method != want.Method || string(got.Signature) != string(want.Signature) {
			t.Fatalf("%q, refused (%v): parseToken read header %#v claims %#v; golang-jwt %#v, %#v", token, err, got.Header, claims, want.Header, oracleClaims)
		}
	}
}

// jwsNull reports whether token's header or payload is JSON null.
func jwsNull(token string) bool {
	parts := strings.Split(token, ".")
	for _, p := range parts[:min(2, len(parts))] {
		if b, err := base64.RawURLEncoding.Strict().DecodeString(p); err == nil && strings.TrimSpace(string(b)) == "null" {
			return true
		}
	}
	return false
}

// jwsHeader and jwsClaims make a token golang-jwt accepts.
const (
	jwsHeader = `{"alg":"HS256","typ":"JWT","kid":"k1"}`
	jwsClaims = `{"iss":"https://issuer.example/","sub":"alice","aud":["api"],"iat":1893553445,"exp":1893557045,"custom:tenantId":"acme","roles":["admin"]}`
)

// jwsCases are tokens parseToken must answer as golang-jwt does: valid,
// and wrong in each of the ways golang-jwt tells apart.
func jwsCases() []string {
	valid := signJWS(jwsHeader, jwsClaims)
	dot := strings.LastIndexByte(valid, '.')
	return []string{
		valid,
		signJWS(` {"alg" : "HS256", "alg":"HS256"} `, " \n"+jwsClaims+"\t"),
		signJWS(`{"alg":"HS\u0032\u0035\u0036"}`, `{"iss":"https:\/\/issuer.example\/","exp":1893557045,"n":[1e2,-0,0.5]}`),
		"", ".", "..", "...", "a.b", "a.b.c.d", valid + ".", "." + valid,
		valid[:dot] + ".AAAA",                                           // another signature
		valid[:dot+3] + "\r\n" + valid[dot+3:],                          // a line break in the signature, which base64 skips
		signedWithBreak(jwsHeader, jwsClaims, 5),                        // a line break in the header, signed
		valid[:dot] + ".!!!!",                                           // not base64
		valid[:dot+1] + valid[dot+1:] + "=",                             // padded
		"=" + valid,                                                     // header not base64
		strings.Replace(valid, ".", ".=", 1),                            // payload not base64
		signJWS(`{"alg":"none"}`, jwsClaims),                            // not allowed
		signJWS(`{"alg":"XX999"}`, jwsClaims),                           // unknown
		signJWS(`{"alg":256}`, jwsClaims),                               // not a string
		signJWS(`{"typ":"JWT"}`, jwsClaims),                             // none named
		signJWS(`{"alg":"HS256"`, jwsClaims),                            // header not JSON
		signJWS(`["HS256"]`, jwsClaims),                                 // header not an object
		signJWS(jwsHeader, `{"iss":`),                                   // payload not JSON
		signJWS(jwsHeader, `["acme"]`),                                  // payload not an object
		signJWS(jwsHeader, `{"exp":1e400}`),                             // out of range
		signJWS(jwsHeader, `null`),                                      // null
		signJWS(`null`, jwsClaims),                                      // null header
		signJWS(jwsHeader, `{"exp":1893557045}`),                        // no issuer
		signJWS(jwsHeader, `{"iss":"https://issuer.example/","exp":1}`), // expired
		signJWS(jwsHeader, `{"iss":"https://issuer.example/","exp":1893557045,"iat":1993553445}`),     // issued later
		signJWS(jwsHeader, `{"iss":"https://issuer.example/","exp":1893557045,"nbf":"tomorrow"}`),     // nbf not a number
		signJWS(jwsHeader, `{"iss":"https://other.example/","exp":1893557045}`),                       // another issuer
		signJWS(jwsHeader, "{\"iss\":\"https://issuer.example/\",\"exp\":1893557045,\"x\":\"\xff\"}"), // invalid UTF-8
	}
}

func TestParseTokenAsGolangJWT(t *testing.T) {
	for _, token := range jwsCases() {
		compareWithGolangJWT(t, token)
	}
	// What the cases are for: the valid one verifies.
	if _, err := parseToken(jwsCases()[0], make(claimSet), jwsKeyfunc, jwsValidator); err != nil {
		t.Fatalf("the valid case: %v", err)
	}
}

// TestParseTokenKeySet: a keyfunc may give golang-jwt's VerificationKeySet,
// which verifies with any of its keys, and refuses the token when empty.
func TestParseTokenKeySet(t *testing.T) {
	token := signJWS(jwsHeader, jwsClaims)
	set := func(keys ...jwt.VerificationKey) jwt.Keyfunc {
		return func(*jwt.Token) (any, error) { return jwt.VerificationKeySet{Keys: keys}, nil }
	}
	if _, err := parseToken(token, make(claimSet), set([]byte("another-secret-of-32-bytes-long!"), jwsSecret), jwsValidator); err != nil {
		t.Errorf("the set's second key signed the token: %v", err)
	}
	if _, err := parseToken(token, make(claimSet), set([]byte("another-secret-of-32-bytes-long!")), jwsValidator); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("no key of the set signed the token: %v, want ErrTokenSignatureInvalid", err)
	}
	if _, err := parseToken(token, make(claimSet), set(), jwsValidator); !errors.Is(err, jwt.ErrTokenUnverifiable) {
		t.Errorf("an empty set: %v, want ErrTokenUnverifiable", err)
	}
}

// FuzzParseToken holds parseToken to golang-jwt's ParseWithClaims: for a
// header and a payload of any bytes, signed (or with the signature
// spoilt, or with a line break in the signed text), and for any string as
// a token, both accept with the same header and claims or refuse with the
// same class of error.
func FuzzParseToken(f *testing.F) {
	for _, c := range []struct{ header, payload string }{
		{jwsHeader, jwsClaims},
		{`{"alg":"none"}`, jwsClaims},
		{jwsHeader, `{"iss":"https://issuer.example/","exp":1}`},
		{jwsHeader, `null`},
		{`{"alg":"HS256","crit":["b64"]}`, `{"iss":"https:\/\/issuer.example\/","exp":1893557045,"u":"\ud83d\ude00"}`},
	} {
		f.Add([]byte(c.header), []byte(c.payload), uint8(0), "")
		f.Add([]byte(c.header), []byte(c.payload), uint8(3), "....")
	}
	for _, token := range jwsCases() {
		f.Add([]byte(nil), []byte(nil), uint8(2), token)
	}
	f.Fuzz(func(t *testing.T, header, payload []byte, mode uint8, raw string) {
		token := signJWS(string(header), string(payload))
		switch mode % 4 {
		case 1: // the signature spoilt
			token = token[:len(token)-2] + "AA"
		case 2: // any string
			token = raw
		case 3: // a line break in the signed text, signed
			token = signedWithBreak(string(header), string(payload), len(raw))
		}
		compareWithGolangJWT(t, token)
	})
}

// TestParseTokenLineBreaks: strict base64 still skips CR and LF, in
// golang-jwt as in parseToken, so a token has more than one spelling: a
// line break in the signature leaves it valid, and one in the signed text
// is valid when signed with it.
func TestParseTokenLineBreaks(t *testing.T) {
	valid := signJWS(jwsHeader, jwsClaims)
	dot := strings.LastIndexByte(valid, '.')
	for _, token := range []string{valid[:dot+3] + "\r\n" + valid[dot+3:], signedWithBreak(jwsHeader, jwsClaims, 5)} {
		compareWithGolangJWT(t, token)
		if _, err := parseToken(token, make(claimSet), jwsKeyfunc, jwsValidator); err != nil {
			t.Errorf("%q: %v", token, err)
		}
	}
}
