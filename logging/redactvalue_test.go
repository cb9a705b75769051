package logging_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/logging"
)

// The secrets of the value tests. Each is searched for in the whole
// output, so each is unlike anything else a line holds.
const (
	testPassword  = "hunter2-pw-Zq81"
	testOpaque    = "opaque-at-5f0c2d9e"
	testSession   = "FwoGZXIvYXdzEJr-session-tok-9x"
	testSecretKey = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	testAccessKey = "AKIAIOSFODNN7EXAMPLE"
	testSignature = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
)

// login is a struct a service might log whole.
type login struct {
	User     string
	Password string
	Attempts int
}

// apiClient holds a token under a JSON name and a secret in an embedded
// struct.
type apiClient struct {
	Name  string `json:"name"`
	Key   string `json:"api_key"`
	inner        // fields promoted to the top, as encoding/json does
}

type inner struct {
	Secret string
	Region string
}

// selfMarshaled writes itself, without its password.
type selfMarshaled struct{ Password string }

func (selfMarshaled) MarshalJSON() ([]byte, error) { return []byte(`"self"`), nil }

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// anyValuer resolves to whatever it holds, as a LogValuer may.
type anyValuer struct{ v any }

func (v anyValuer) LogValue() slog.Value { return slog.AnyValue(v.v) }

// valueCase is a value holding secrets, and ordinary parts of it that must
// still be written.
type valueCase struct {
	name    string
	value   any
	secrets []string
	kept    []string
}

// valueCases are the shapes a secret reaches a log line in, other than a
// string under a sensitive key.
func valueCases(t testing.TB, jwt string) []valueCase {
	t.Helper()
	mustURL := func(s string) *url.URL { return mustParseURL(t, s) }
	presigned := "https://bucket.s3.amazonaws.com/report.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
		"&X-Amz-Credential=" + testAccessKey + "%2F20300102%2Feu-west-1%2Fs3%2Faws4_request" +
		"&X-Amz-Security-Token=" + testSession + "&X-Amz-Signature=" + testSignature + "&X-Amz-Expires=300"
	creds := aws.Credentials{
		AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey, SessionToken: testSession,
		Source: "AssumeRoleProvider", CanExpire: true, Expires: testTime,
	}
	return []valueCase{
		{
			name:    "url.Values",
			value:   url.Values{"access_token": {testOpaque}, "q": {jwt}, "page": {"2"}},
			secrets: []string{testOpaque, jwt},
			kept:    []string{"page", "access_token", `2`},
		},
		{
			name:    "*url.URL with access_token",
			value:   mustURL("https://api.example.com/v1/orders?page=2&access_token=" + testOpaque + "&sort=asc"),
			secrets: []string{testOpaque},
			kept:    []string{"api.example.com/v1/orders", "page=2", "sort=asc"},
		},
		{
			name:    "*url.URL with a JWT under an ordinary parameter",
			value:   mustURL("https://api.example.com/cb?state=xyz&assertion=" + jwt),
			secrets: []string{jwt},
			kept:    []string{"api.example.com/cb", "state=xyz"},
		},
		{
			name:    "*url.URL with a JWT in the path",
			value:   mustURL("https://api.example.com/reset/" + jwt + "/confirm?lang=en"),
			secrets: []string{jwt},
			kept:    []string{"api.example.com/reset/", "/confirm", "lang=en"},
		},
		{
			name:    "*url.URL with a userinfo password",
			value:   mustURL("postgres://orders:" + testPassword + "@db.example.com:5432/orders?sslmode=require"),
			secrets: []string{testPassword},
			kept:    []string{"orders", "db.example.com:5432", "sslmode=require"},
		},
		{
			name:    "*url.URL with a token in the fragment",
			value:   mustURL("https://app.example.com/cb#access_token=" + testOpaque + "&token_type=bearer&expires_in=3600"),
			secrets: []string{testOpaque},
			kept:    []string{"app.example.com/cb", "token_type=bearer", "expires_in=3600"},
		},
		{
			name:    "*url.URL presigned by S3",
			value:   mustURL(presigned),
			secrets: []string{testSession, testSignature},
			kept:    []string{"bucket.s3.amazonaws.com/report.csv", "X-Amz-Expires=300", testAccessKey},
		},
		{
			name:    "url.URL",
			value:   *mustURL("https://bob:" + testPassword + "@api.example.com/?access_token=" + testOpaque + "&page=2"),
			secrets: []string{testPassword, testOpaque},
			kept:    []string{"api.example.com", "bob", "page=2"},
		},
		{
			name:    "[]string",
			value:   []string{"Bearer " + jwt, "ordinary"},
			secrets: []string{jwt},
			kept:    []string{"ordinary"},
		},
		{
			name:    "[]any",
			value:   []any{jwt, 42, "ordinary"},
			secrets: []string{jwt},
			kept:    []string{"ordinary", "42"},
		},
		{
			name:    "array",
			value:   [2]string{"ordinary", jwt},
			secrets: []string{jwt},
			kept:    []string{"ordinary"},
		},
		{
			name:    "[]byte",
			value:   []byte(jwt),
			secrets: []string{jwt, base64.StdEncoding.EncodeToString([]byte(jwt))[:40]},
		},
		{
			name:    "map[string]string with a JWT",
			value:   map[string]string{"note": "Bearer " + jwt, "user": "bob"},
			secrets: []string{jwt},
			kept:    []string{"note", "bob"},
		},
		{
			name:    "map[string]string with a sensitive key",
			value:   map[string]string{"password": testPassword, "user": "bob"},
			secrets: []string{testPassword},
			kept:    []string{"password", "bob"},
		},
		{
			name:    "map[string][]string",
			value:   map[string][]string{"SessionToken": {testSession}, "q": {"ordinary", jwt}},
			secrets: []string{testSession, jwt},
			kept:    []string{"SessionToken", "ordinary"},
		},
		{
			name:    "map[string]any nested",
			value:   map[string]any{"user": "bob", "auth": map[string]any{"Password": testPassword, "kind": "basic"}, "list": []any{jwt}},
			secrets: []string{testPassword, jwt},
			kept:    []string{"bob", "basic"},
		},
		{
			name:    "map[string]int under a sensitive key",
			value:   map[string]int{"pin": 1, "token": 918273645},
			secrets: []string{"918273645"},
			kept:    []string{"pin"},
		},
		{
			name: "http.Header",
			value: http.Header{
				"Authorization":        {"Basic " + testPassword},
				"X-Amz-Security-Token": {testSession},
				"X-Forwarded-Auth":     {"Bearer " + jwt},
				"Accept":               {"application/json"},
			},
			secrets: []string{testPassword, testSession, jwt},
			kept:    []string{"application/json", "Authorization"},
		},
		{
			name:    "struct",
			value:   login{User: "bob", Password: testPassword, Attempts: 3},
			secrets: []string{testPassword},
			kept:    []string{"bob", "3"},
		},
		{
			name:    "*struct",
			value:   &login{User: "bob", Password: testPassword, Attempts: 3},
			secrets: []string{testPassword},
			kept:    []string{"bob", "3"},
		},
		{
			name:    "struct with a JWT in an ordinary field",
			value:   struct{ Note, User string }{Note: "got " + jwt, User: "bob"},
			secrets: []string{jwt},
			kept:    []string{"bob"},
		},
		{
			name: "struct in a struct",
			value: struct {
				Name  string
				Login login
			}{Name: "checkout", Login: login{User: "bob", Password: testPassword}},
			secrets: []string{testPassword},
			kept:    []string{"checkout", "bob"},
		},
		{
			name:    "struct with a JSON name and an embedded struct",
			value:   apiClient{Name: "billing", Key: testOpaque, inner: inner{Secret: testPassword, Region: "eu-west-1"}},
			secrets: []string{testOpaque, testPassword},
			kept:    []string{"billing", "eu-west-1"},
		},
		{
			name: "struct with secrets in unexported fields",
			value: struct {
				User     string
				password string
				note     string
			}{User: "bob", password: testPassword, note: jwt},
			secrets: []string{testPassword, jwt},
			kept:    []string{"bob"},
		},
		{
			name:    "[]struct",
			value:   []login{{User: "bob", Password: testPassword}, {User: "eve"}},
			secrets: []string{testPassword},
			kept:    []string{"bob", "eve"},
		},
		{
			name:    "map[string]struct",
			value:   map[string]*login{"primary": {User: "bob", Password: testPassword}},
			secrets: []string{testPassword},
			kept:    []string{"primary", "bob"},
		},
		{
			name:    "aws.Credentials",
			value:   creds,
			secrets: []string{testSecretKey, testSession},
			kept:    []string{testAccessKey, "AssumeRoleProvider"},
		},
		{
			name:    "*aws.Credentials",
			value:   &creds,
			secrets: []string{testSecretKey, testSession},
			kept:    []string{testAccessKey, "AssumeRoleProvider"},
		},
		{
			name: "struct holding aws.Credentials",
			value: struct {
				Role  string
				Creds aws.Credentials
			}{Role: "orders-writer", Creds: creds},
			secrets: []string{testSecretKey, testSession},
			kept:    []string{"orders-writer", testAccessKey},
		},
	}
}

// placement logs an attribute one way a service might.
type placement struct {
	name string
	log  func(l *slog.Logger, a slog.Attr)
}

// placements are the ways an attribute reaches a line: in the record, in a
// group, under a logger's group, with With, and through a LogValuer.
var placements = []placement{
	{"record", func(l *slog.Logger, a slog.Attr) { l.LogAttrs(context.Background(), slog.LevelInfo, "m", a) }},
	{"in a group", func(l *slog.Logger, a slog.Attr) {
		l.LogAttrs(context.Background(), slog.LevelInfo, "m", slog.Group("g", a, slog.String("side", "kept")))
	}},
	{"under WithGroup", func(l *slog.Logger, a slog.Attr) {
		l.WithGroup("g").LogAttrs(context.Background(), slog.LevelInfo, "m", a)
	}},
	{"With", func(l *slog.Logger, a slog.Attr) { l.With(a).Info("m") }},
	{"With under WithGroup", func(l *slog.Logger, a slog.Attr) { l.WithGroup("g").With(a).Info("m") }},
	{"LogValuer", func(l *slog.Logger, a slog.Attr) {
		l.LogAttrs(context.Background(), slog.LevelInfo, "m", slog.Any(a.Key, anyValuer{a.Value.Any()}))
	}},
	{"LogValuer in a group", func(l *slog.Logger, a slog.Attr) {
		l.LogAttrs(context.Background(), slog.LevelInfo, "m", slog.Group("g", slog.Any(a.Key, anyValuer{a.Value.Any()})))
	}},
}

// TestHandlerRedactsValues logs each shape that can carry a secret, in each
// placement, through the JSON and the text handler, and searches the whole
// output for the secrets and for the ordinary parts next to them.
func TestHandlerRedactsValues(t *testing.T) {
	iss := authztest.Start(t)
	jwt := iss.MustMint("acme", "premium")
	handlers := []struct {
		name string
		next func(io.Writer) slog.Handler
	}{
		{"json", jsonHandler},
		{"text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
	}
	for _, vc := range valueCases(t, jwt) {
		t.Run(vc.name, func(t *testing.T) {
			for _, h := range handlers {
				for _, p := range placements {
					buf := new(syncBuffer)
					logger := slog.New(logging.NewHandler(h.next(buf)))
					p.log(logger, slog.Any("v", vc.value))
					out := buf.String()
					if leaked := containsAny(out, vc.secrets...); leaked != nil {
						t.Errorf("%s, %s: output contains %q:\n%s", h.name, p.name, leaked, out)
					}
					for _, k := range vc.kept {
						if !strings.Contains(out, k) {
							t.Errorf("%s, %s: output lacks the ordinary %q:\n%s", h.name, p.name, k, out)
						}
					}
				}
			}
		})
	}
}

// TestHandlerRedactedValueShape checks that what replaces a value is still
// readable JSON: structs become objects of their fields, URLs strings.
func TestHandlerRedactedValueShape(t *testing.T) {
	u, err := url.Parse("https://bob:" + testPassword + "@api.example.com/v1?page=2&Access-Token=" + testOpaque + "#frag")
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey, SessionToken: testSession, Source: "test", Expires: testTime}
	tests := []struct {
		name  string
		value any
		want  any
	}{
		{"struct", login{User: "bob", Password: testPassword, Attempts: 3},
			map[string]any{"User": "bob", "Password": logging.Redacted, "Attempts": 3.0}},
		{"struct with a JSON name and an embedded struct", apiClient{Name: "billing", Key: testOpaque, inner: inner{Secret: "s", Region: "eu"}},
			map[string]any{"name": "billing", "api_key": logging.Redacted, "Secret": logging.Redacted, "Region": "eu"}},
		{"embedded and named struct", struct {
			login
			Login login `json:"login"`
		}{login: login{User: "eve"}, Login: login{User: "bob", Password: "p"}},
			map[string]any{
				"User": "eve", "Password": logging.Redacted, "Attempts": 0.0,
				"login": map[string]any{"User": "bob", "Password": logging.Redacted, "Attempts": 0.0},
			}},
		{"shallower field wins, as in encoding/json", struct {
			inner
			Region string
		}{inner: inner{Secret: "s", Region: "inner"}, Region: "outer"},
			map[string]any{"Secret": logging.Redacted, "Region": "outer"}},
		{"omitempty and -", struct {
			Token  string
			Empty  string `json:",omitempty"`
			Hidden string `json:"-"`
		}{Token: "t", Hidden: "h"},
			map[string]any{"Token": logging.Redacted}},
		{"aws.Credentials", creds, map[string]any{
			"AccessKeyID": testAccessKey, "SecretAccessKey": logging.Redacted, "SessionToken": logging.Redacted,
			"Source": "test", "CanExpire": false, "Expires": testTime.Format(time.RFC3339Nano), "AccountID": "",
		}},
		{"*url.URL", u, "https://bob:xxxxx@api.example.com/v1?page=2&Access-Token=[REDACTED]#frag"},
		{"*url.URL without secrets", mustParseURL(t, "https://api.example.com/v1?page=2"), "https://api.example.com/v1?page=2"},
		{"url.Values", url.Values{"password": {"p"}, "page": {"2"}},
			map[string]any{"password": []any{logging.Redacted}, "page": []any{"2"}}},
		{"http.Header", http.Header{"Cookie": {"a", "b"}, "Accept": {"text/plain"}},
			map[string]any{"Cookie": []any{logging.Redacted}, "Accept": []any{"text/plain"}}},
		{"map[string]string", map[string]string{"Secret": "s", "k": "v"},
			map[string]any{"Secret": logging.Redacted, "k": "v"}},
		{"[]struct", []login{{User: "bob", Password: "p"}},
			[]any{map[string]any{"User": "bob", "Password": logging.Redacted, "Attempts": 0.0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, buf := newLogger()
			logger.Info("m", slog.Any("v", tc.value))
			want := map[string]any{"level": "INFO", "msg": "m", "v": tc.want}
			if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("struct fields keep their order", func(t *testing.T) {
		logger, buf := newLogger()
		logger.Info("m", slog.Any("v", login{User: "bob", Password: "p", Attempts: 3}))
		want := `{"level":"INFO","msg":"m","v":{"User":"bob","Password":"[REDACTED]","Attempts":3}}` + "\n"
		if diff := cmp.Diff(want, buf.String()); diff != "" {
			t.Errorf("line (-want +got):\n%s", diff)
		}
	})
}

// TestHandlerLeavesOrdinaryValues logs values without secrets: the line is
// the one the wrapped handler writes by itself.
func TestHandlerLeavesOrdinaryValues(t *testing.T) {
	type order struct {
		ID    int
		Items []string
		Note  string `json:"note,omitempty"`
		When  time.Time
		Tags  map[string]string
	}
	values := []any{
		selfMarshaled{Password: testPassword}, // decides what it writes
		order{ID: 42, Items: []string{"a", "b"}, When: testTime, Tags: map[string]string{"k": "v"}},
		&order{ID: 7},
		[]string{"a", "b"},
		[]any{1, "a", nil},
		map[string]string{"user": "bob"},
		map[string]any{"user": "bob", "n": 1, "nested": map[string]any{"k": []string{"v"}}},
		url.Values{"page": {"2"}},
		http.Header{"Accept": {"application/json"}},
		[]byte("plain bytes"),
		struct{ Tokens int }{Tokens: 3}, // "Tokens" is not "token"
		(*login)(nil),
		map[int]string{1: "one"},
		(*derefError)(nil), // its Error panics: written "<nil>", as by slog
	}
	for _, v := range values {
		var want, got strings.Builder
		slog.New(jsonHandler(&want)).Info("m", "v", v)
		slog.New(logging.NewHandler(jsonHandler(&got))).Info("m", "v", v)
		if diff := cmp.Diff(want.String(), got.String()); diff != "" {
			t.Errorf("%T: line differs from the wrapped handler's (-want +got):\n%s", v, diff)
		}
	}
}

// derefError is an error whose Error method panics on a nil pointer.
type derefError struct{ msg string }

func (e *derefError) Error() string { return e.msg }

// TestHandlerRedactsDeepValues nests a token deeper than the walk goes, and
// logs a value that refers to itself.
func TestHandlerRedactsDeepValues(t *testing.T) {
	iss := authztest.Start(t)
	jwt := iss.MustMint("acme", "premium")
	var deep any = map[string]any{"note": jwt}
	for range 20 {
		deep = []any{map[string]any{"next": deep}}
	}
	type node struct {
		Name string
		Next *node
	}
	loop := &node{Name: "a"}
	loop.Next = loop

	logger, buf := newLogger()
	logger.Info("deep", "v", deep)
	logger.Info("loop", "v", loop) // must return; encoding/json reports the cycle
	out := buf.String()
	if strings.Contains(out, jwt) {
		t.Errorf("output contains the token:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("got %d lines, want 2:\n%s", n, out)
	}
}

// TestAuditRedactsValues writes every shape of valueCases as audit detail
// through an Auditor over a plain JSON handler, which redacts nothing
// itself.
func TestAuditRedactsValues(t *testing.T) {
	iss := authztest.Start(t)
	jwt := iss.MustMint("acme", "premium")
	for _, vc := range valueCases(t, jwt) {
		a, buf := newAuditor(nil)
		a.Audit(context.Background(), "login", "session", logging.OutcomeFailure,
			slog.Any("v", vc.value), slog.Group("g", slog.Any("v", vc.value)))
		out := buf.String()
		if leaked := containsAny(out, vc.secrets...); leaked != nil {
			t.Errorf("%s: audit record contains %q:\n%s", vc.name, leaked, out)
		}
		for _, k := range vc.kept {
			if !strings.Contains(out, k) {
				t.Errorf("%s: audit record lacks the ordinary %q:\n%s", vc.name, k, out)
			}
		}
	}
}

// TestHandlerHidesAccessKeyID: the access key ID of aws.Credentials is
// written by default and hidden on request.
func TestHandlerHidesAccessKeyID(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}
	for _, tc := range []struct {
		opts []logging.Option
		want bool
	}{
		{nil, true},
		{[]logging.Option{logging.WithRedactedKeys("access_key_id")}, false},
	} {
		logger, buf := newLogger(tc.opts...)
		logger.Info("m", "creds", creds)
		if got := strings.Contains(buf.String(), testAccessKey); got != tc.want {
			t.Errorf("with %d options: access key ID written = %v, want %v:\n%s", len(tc.opts), got, tc.want, buf.String())
		}
	}
}
