package tenancylambda_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
)

// request is what a test compares of the request the handler saw.
type request struct {
	Method, Path, RawPath, RawQuery, RequestURI string
	Host, RemoteAddr, Proto                     string
	ContentLength                               int64
	Body                                        string
	Header                                      http.Header
}

func requestOf(s *seen, keys ...string) request {
	r := s.r
	h := http.Header{}
	for _, k := range keys {
		if vs := r.Header.Values(k); vs != nil {
			h[http.CanonicalHeaderKey(k)] = vs
		}
	}
	return request{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery, RequestURI: r.RequestURI,
		Host: r.Host, RemoteAddr: r.RemoteAddr, Proto: r.Proto,
		ContentLength: r.ContentLength, Body: s.body, Header: h,
	}
}

// TestRequestV1: a REST API event becomes the request a server would have
// read, from its multi-value headers and query parameters, with its body
// decoded from base64; the Host header is r.Host, not a header.
func TestRequestV1(t *testing.T) {
	var s seen
	h := newHandler(t, recorder(&s))
	res := invokeV1(t, context.Background(), h, loadV1(t, "rest-cognito.json"))
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", res.StatusCode)
	}
	want := request{
		Method: "POST", Path: "/t/acme/notes", RawQuery: "q=a+b%26c&tag=a&tag=b", RequestURI: "/t/acme/notes?q=a+b%26c&tag=a&tag=b",
		Host: "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com", RemoteAddr: "203.0.113.7:0", Proto: "HTTP/1.1",
		ContentLength: 12, Body: "hello, world",
		Header: http.Header{
			"X-Multi":      {"first", "second"},
			"Content-Type": {"text/plain; charset=utf-8"},
			"X-Request-Id": {"c6af9ac6-7b61-11e6-9a41-93e8deadbeef"},
		},
	}
	if diff := cmp.Diff(want, requestOf(&s, "X-Multi", "Content-Type", "X-Request-Id", "Host")); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if got := s.r.URL.Query()["q"]; len(got) != 1 || got[0] != "a b&c" {
		t.Errorf("query q = %q, want [\"a b&c\"]", got)
	}
}

// TestRequestV1SingleValue: an event with only the single-value maps
// (a test tool's, an old integration's) is read from them.
func TestRequestV1SingleValue(t *testing.T) {
	var s seen
	h := newHandler(t, recorder(&s))
	ev := loadV1(t, "rest-cognito.json")
	ev.MultiValueHeaders, ev.MultiValueQueryStringParameters = nil, nil
	ev.IsBase64Encoded, ev.Body = false, "plain"
	invokeV1(t, context.Background(), h, ev)
	if got, want := s.r.Header.Values("X-Multi"), []string{"second"}; !cmp.Equal(got, want) {
		t.Errorf("X-Multi = %q, want %q", got, want)
	}
	if got, want := s.r.URL.RawQuery, "q=a+b%26c&tag=b"; got != want {
		t.Errorf("query %q, want %q", got, want)
	}
	if s.body != "plain" || s.r.ContentLength != 5 {
		t.Errorf("body %q of length %d, want \"plain\" of 5", s.body, s.r.ContentLength)
	}
}

// TestRequestV2: an HTTP API event's raw path and query are the URL's,
// its cookies one Cookie header, its joined headers kept as sent.
func TestRequestV2(t *testing.T) {
	var s seen
	h := newHandler(t, recorder(&s))
	res := invokeV2(t, context.Background(), h, loadV2(t, "http-jwt.json"))
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", res.StatusCode)
	}
	want := request{
		Method: "GET", Path: "/t/acme/notes", RawQuery: "tag=a&tag=b&q=a%20b%26c", RequestURI: "/t/acme/notes?tag=a&tag=b&q=a%20b%26c",
		Host: "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com", RemoteAddr: "203.0.113.7:0", Proto: "HTTP/1.1",
		Header: http.Header{
			"Cookie":       {"theme=dark; session=s1"},
			"X-Multi":      {"first,second"},
			"X-Request-Id": {"LV7fzho-PHcEJPw="},
		},
	}
	if diff := cmp.Diff(want, requestOf(&s, "Cookie", "X-Multi", "X-Request-Id", "Host")); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if c, err := s.r.Cookie("session"); err != nil || c.Value != "s1" {
		t.Errorf("cookie session = %v, %v; want s1", c, err)
	}
	if s.r.Body != http.NoBody {
		t.Errorf("body of a request without one is %T, want http.NoBody", s.r.Body)
	}
}

// TestRequestContext: the request's context is the invocation's.
func TestRequestContext(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "invocation")
	var s seen
	invokeV2(t, ctx, newHandler(t, recorder(&s)), loadV2(t, "http-jwt.json"))
	if got := s.r.Context().Value(key{}); got != "invocation" {
		t.Errorf("request context value %v, want the invocation's", got)
	}
}

// TestPaths: REST APIs send the path escaped, HTTP APIs unescaped; both
// become the URL the client asked for, whose escaped form a router sees.
func TestPaths(t *testing.T) {
	for _, tc := range []struct {
		name, path  string
		wantPath    string
		wantEscaped string
	}{
		{"plain", "/t/acme/notes", "/t/acme/notes", "/t/acme/notes"},
		{"escaped slash", "/t/a%2Fb/notes", "/t/a/b/notes", "/t/a%2Fb/notes"},
		{"escaped space", "/notes/a%20b", "/notes/a b", "/notes/a%20b"},
		{"unescaped space", "/notes/a b", "/notes/a b", "/notes/a%20b"},
		{"unescaped question mark", "/notes/why?", "/notes/why?", "/notes/why%3F"},
		{"unescaped hash", "/notes/#1", "/notes/#1", "/notes/%231"},
		{"bare percent", "/notes/100%", "/notes/100%", "/notes/100%25"},
		{"non-ASCII", "/notes/été", "/notes/été", "/notes/%C3%A9t%C3%A9"},
		{"no leading slash", "notes", "/notes", "/notes"},
		{"empty", "", "/", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s seen
			h := newHandler(t, recorder(&s))
			ev := loadV2(t, "http-jwt.json")
			ev.RawPath, ev.RequestContext.HTTP.Path, ev.RawQueryString = tc.path, tc.path, ""
			invokeV2(t, context.Background(), h, ev)
			if s.r.URL.Path != tc.wantPath || s.r.URL.EscapedPath() != tc.wantEscaped || s.r.URL.RawQuery != "" {
				t.Errorf("path %q: URL path %q, escaped %q, query %q; want %q, %q, none",
					tc.path, s.r.URL.Path, s.r.URL.EscapedPath(), s.r.URL.RawQuery, tc.wantPath, tc.wantEscaped)
			}
		})
	}
	t.Run("v2 without rawPath", func(t *testing.T) {
		var s seen
		ev := loadV2(t, "http-jwt.json")
		ev.RawPath, ev.RequestContext.HTTP.Path = "", "/from/context"
		invokeV2(t, context.Background(), newHandler(t, recorder(&s)), ev)
		if s.r.URL.Path != "/from/context" {
			t.Errorf("path %q, want requestContext.http.path", s.r.URL.Path)
		}
	})
}

// TestRemoteAddr: the source IP, v4 or v6, is a RemoteAddr that
// net.SplitHostPort reads.
func TestRemoteAddr(t *testing.T) {
	for _, ip := range []string{"203.0.113.7", "2001:db8::7"} {
		var s seen
		ev := loadV2(t, "http-jwt.json")
		ev.RequestContext.HTTP.SourceIP = ip
		invokeV2(t, context.Background(), newHandler(t, recorder(&s)), ev)
		host, _, err := net.SplitHostPort(s.r.RemoteAddr)
		if err != nil || host != ip {
			t.Errorf("source IP %s: RemoteAddr %q: host %q, %v", ip, s.r.RemoteAddr, host, err)
		}
	}
}

// TestBase64Body: a base64 body reaches the handler decoded, binary too;
// one that is not base64 is answered 400 with a problem document, and the
// handler is not called.
func TestBase64Body(t *testing.T) {
	binary := []byte{0, 1, 2, 0xff, 0xfe, '\n'}
	t.Run("binary", func(t *testing.T) {
		var s seen
		ev := loadV2(t, "http-jwt.json")
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(binary), true
		invokeV2(t, context.Background(), newHandler(t, recorder(&s)), ev)
		if s.body != string(binary) || s.r.ContentLength != int64(len(binary)) {
			t.Errorf("body %q (length %d), want %q", s.body, s.r.ContentLength, binary)
		}
	})
	for _, body := range []string{"not base64!", "aGVsbG8", "aGVsbG8=\x00"} {
		t.Run("bad "+body, func(t *testing.T) {
			called := false
			h := newHandler(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			v1 := loadV1(t, "rest-cognito.json")
			v1.Body = body
			r1 := invokeV1(t, context.Background(), h, v1)
			v2 := loadV2(t, "http-jwt.json")
			v2.Body, v2.IsBase64Encoded = body, true
			r2 := invokeV2(t, context.Background(), h, v2)
			for _, r := range []struct {
				status int
				ct     string
				body   string
			}{{r1.StatusCode, r1.Headers["Content-Type"], r1.Body}, {r2.StatusCode, r2.Headers["Content-Type"], r2.Body}} {
				if r.status != http.StatusBadRequest || r.ct != "application/problem+json" || !strings.Contains(r.body, `"status":400`) {
					t.Errorf("response %d %s %s, want a 400 problem", r.status, r.ct, r.body)
				}
			}
			if called {
				t.Error("the handler was called")
			}
		})
	}
}

// TestUnknownEvent: a payload that is not an API Gateway proxy event is
// an error naming what was expected, never a request.
func TestUnknownEvent(t *testing.T) {
	h := newHandler(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler called") }))
	for _, tc := range []struct{ name, payload, want string }{
		{"not JSON", `hello`, "not a JSON object"},
		{"an array", `[1]`, "not a JSON object"},
		{"empty object", `{}`, `got no version and no httpMethod`},
		{"SQS", `{"Records":[{"eventSource":"aws:sqs"}]}`, `"httpMethod"`},
		{"future version", `{"version":"3.0","rawPath":"/"}`, `got version "3.0"`},
		{"1.0 without method", `{"version":"1.0","path":"/"}`, `got version "1.0"`},
		{"ALB", `{"httpMethod":"GET","path":"/","requestContext":{"elb":{"targetGroupArn":"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/t/1"}}}`, "Application Load Balancer"},
		{"2.0 of the wrong shape", `{"version":"2.0","headers":["a"]}`, "does not decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.Invoke(context.Background(), []byte(tc.payload))
			if !errors.Is(err, tenancylambda.ErrUnknownEvent) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Invoke(%s) = %s, %v; want an error wrapping ErrUnknownEvent that says %s", tc.payload, out, err, tc.want)
			}
		})
	}
	// A 1.0 event's version is optional: REST APIs send none.
	var s seen
	out, err := newHandler(t, recorder(&s)).Invoke(context.Background(), []byte(`{"version":"1.0","httpMethod":"GET","path":"/x"}`))
	if err != nil || s.r == nil {
		t.Errorf("1.0 event with a version: %s, %v", out, err)
	}
}
