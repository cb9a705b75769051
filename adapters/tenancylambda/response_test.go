package tenancylambda_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestResponse: status, headers and body reach both response formats:
// every value of a header in v1's multiValueHeaders, and in v2 values
// joined by ", " but Set-Cookie's in cookies; a textual body as it is, any
// other (or compressed) in base64.
func TestResponse(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff}
	for _, tc := range []struct {
		name    string
		method  string
		handler http.HandlerFunc
		status  int
		header  map[string][]string // the v1 multi-value header; the others follow from it
		body    []byte
		base64  bool
	}{{
		name: "json with repeated headers and cookies",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Add("Vary", "Accept")
			w.Header().Add("Vary", "Authorization")
			http.SetCookie(w, &http.Cookie{Name: "a", Value: "1", Path: "/"})
			http.SetCookie(w, &http.Cookie{Name: "b", Value: "2", HttpOnly: true})
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"n1"}`)
		},
		status: 201,
		header: map[string][]string{"Content-Type": {"application/json"}, "Vary": {"Accept", "Authorization"}, "Set-Cookie": {"a=1; Path=/", "b=2; HttpOnly"}},
		body:   []byte(`{"id":"n1"}`),
	}, {
		name: "problem json",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"status":429}`)
		},
		status: 429, header: map[string][]string{"Content-Type": {"application/problem+json"}}, body: []byte(`{"status":429}`),
	}, {
		name: "text without a content type: detected, as net/http does",
		handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello")
		},
		status: 200, header: map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}}, body: []byte("hello"),
	}, {
		name: "binary",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			w.Write(binary)
		},
		status: 200, header: map[string][]string{"Content-Type": {"image/png"}}, body: binary, base64: true,
	}, {
		name: "compressed json",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(binary)
		},
		status: 200, header: map[string][]string{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, body: binary, base64: true,
	}, {
		name: "text that is not UTF-8",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=latin1")
			w.Write([]byte("caf\xe9"))
		},
		status: 200, header: map[string][]string{"Content-Type": {"text/plain; charset=latin1"}}, body: []byte("caf\xe9"), base64: true,
	}, {
		name: "xml, javascript and form types are text",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/atom+xml")
			io.WriteString(w, "<feed/>")
		},
		status: 200, header: map[string][]string{"Content-Type": {"application/atom+xml"}}, body: []byte("<feed/>"),
	}, {
		name: "header changed after WriteHeader is not sent",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-Late", "1")
			w.WriteHeader(http.StatusInternalServerError) // superfluous, ignored
			io.WriteString(w, "ok")
		},
		status: 202, header: map[string][]string{"Content-Type": {"text/plain"}}, body: []byte("ok"),
	}, {
		name: "no body in a 204",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "dropped"); !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Errorf("Write after 204: %v, want http.ErrBodyNotAllowed", err)
			}
		},
		status: 204,
	}, {
		name:   "no body for HEAD",
		method: http.MethodHead,
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			if n, err := io.WriteString(w, "dropped"); n != 7 || err != nil {
				t.Errorf("Write for HEAD: %d, %v; want 7, nil", n, err)
			}
		},
		status: 200, header: map[string][]string{"Content-Type": {"text/plain"}},
	}, {
		name:    "nothing written",
		handler: func(w http.ResponseWriter, r *http.Request) {},
		status:  200,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, tc.handler)
			wantBody := string(tc.body)
			if tc.base64 {
				wantBody = base64.StdEncoding.EncodeToString(tc.body)
			}

			v1 := loadV1(t, "rest-cognito.json")
			if tc.method != "" {
				v1.HTTPMethod = tc.method
			}
			r1 := invokeV1(t, context.Background(), h, v1)
			single := map[string]string{}
			for k, vs := range tc.header {
				single[k] = vs[0]
			}
			if r1.StatusCode != tc.status || r1.Body != wantBody || r1.IsBase64Encoded != tc.base64 {
				t.Errorf("v1: %d %q base64 %v, want %d %q %v", r1.StatusCode, r1.Body, r1.IsBase64Encoded, tc.status, wantBody, tc.base64)
			}
			if diff := cmp.Diff(tc.header, r1.MultiValueHeaders, cmpEmpty); diff != "" {
				t.Errorf("v1 multiValueHeaders (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(single, r1.Headers, cmpEmpty); diff != "" {
				t.Errorf("v1 headers (-want +got):\n%s", diff)
			}

			v2 := loadV2(t, "http-jwt.json")
			if tc.method != "" {
				v2.RequestContext.HTTP.Method = tc.method
			}
			r2 := invokeV2(t, context.Background(), h, v2)
			joined := map[string]string{}
			for k, vs := range tc.header {
				if k != "Set-Cookie" {
					joined[k] = vs[0]
					for _, v := range vs[1:] {
						joined[k] += ", " + v
					}
				}
			}
			if r2.StatusCode != tc.status || r2.Body != wantBody || r2.IsBase64Encoded != tc.base64 {
				t.Errorf("v2: %d %q base64 %v, want %d %q %v", r2.StatusCode, r2.Body, r2.IsBase64Encoded, tc.status, wantBody, tc.base64)
			}
			if diff := cmp.Diff(joined, r2.Headers, cmpEmpty); diff != "" {
				t.Errorf("v2 headers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.header["Set-Cookie"], r2.Cookies, cmpEmpty); diff != "" {
				t.Errorf("v2 cookies (-want +got):\n%s", diff)
			}
			if r2.MultiValueHeaders != nil {
				t.Errorf("v2 multiValueHeaders %v, want none (HTTP APIs ignore them)", r2.MultiValueHeaders)
			}
		})
	}
}

// cmpEmpty makes nil and empty maps and slices equal.
var cmpEmpty = cmp.FilterValues(func(x, y any) bool { return isEmpty(x) && isEmpty(y) }, cmp.Comparer(func(_, _ any) bool { return true }))

func isEmpty(v any) bool {
	switch v := v.(type) {
	case map[string]string:
		return len(v) == 0
	case map[string][]string:
		return len(v) == 0
	case []string:
		return len(v) == 0
	}
	return false
}
