package tenant_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/tenant"
)

// decodeProblem checks the headers every problem response carries and
// returns the decoded body.
func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) tenant.Problem {
	t.Helper()
	h := rec.Result().Header
	if got := h.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", got)
	}
	if got, want := h.Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
		t.Errorf("Content-Length = %q, body is %s bytes", got, want)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	var p tenant.Problem
	dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decoding problem body %q: %v", rec.Body.String(), err)
	}
	if p.Status != rec.Code {
		t.Errorf("body status %d differs from response status %d", p.Status, rec.Code)
	}
	return p
}

func TestWriteProblem(t *testing.T) {
	tests := []struct {
		name string
		in   tenant.Problem
		want tenant.Problem
	}{
		{
			name: "all fields",
			in: tenant.Problem{
				Type:     tenant.ProblemType("invalid-tenant"),
				Title:    "Invalid tenant",
				Status:   http.StatusBadRequest,
				Detail:   "The request names a tenant that is not a valid tenant ID.",
				Instance: "req-123",
			},
			want: tenant.Problem{
				Type:     "https://github.com/tenancykit/tenancy/blob/main/docs/problems.md#invalid-tenant",
				Title:    "Invalid tenant",
				Status:   http.StatusBadRequest,
				Detail:   "The request names a tenant that is not a valid tenant ID.",
				Instance: "req-123",
			},
		},
		{
			name: "zero value",
			in:   tenant.Problem{},
			want: tenant.Problem{Type: "about:blank", Title: "Internal Server Error", Status: 500},
		},
		{
			name: "title from status",
			in:   tenant.Problem{Status: http.StatusTeapot},
			want: tenant.Problem{Type: "about:blank", Title: "I'm a teapot", Status: http.StatusTeapot},
		},
		{
			name: "status defaults, title kept",
			in:   tenant.Problem{Title: "Broken", Detail: "Try later."},
			want: tenant.Problem{Type: "about:blank", Title: "Broken", Status: 500, Detail: "Try later."},
		},
		{
			name: "retry after",
			in:   tenant.Problem{Type: tenant.ProblemType("rate-limited"), Status: http.StatusTooManyRequests, RetryAfter: 7},
			want: tenant.Problem{Type: tenant.ProblemType("rate-limited"), Title: "Too Many Requests", Status: 429, RetryAfter: 7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tenant.WriteProblem(rec, tt.in)
			if rec.Code != tt.want.Status {
				t.Errorf("status = %d, want %d", rec.Code, tt.want.Status)
			}
			got := decodeProblem(t, rec)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("body mismatch (-want +got):\n%s", diff)
			}
			retry := rec.Result().Header.Get("Retry-After")
			if tt.in.RetryAfter > 0 {
				if retry != strconv.Itoa(tt.in.RetryAfter) {
					t.Errorf("Retry-After = %q, want %d", retry, tt.in.RetryAfter)
				}
			} else if retry != "" {
				t.Errorf("Retry-After = %q, want none", retry)
			}
		})
	}
}

func TestWriteProblemOmitsEmptyMembers(t *testing.T) {
	rec := httptest.NewRecorder()
	tenant.WriteProblem(rec, tenant.Problem{Status: http.StatusNotFound})
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	want := map[string]any{"type": "about:blank", "title": "Not Found", "status": 404.0}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("members mismatch (-want +got):\n%s", diff)
	}
}

func TestWriteProblemNegativeRetryAfter(t *testing.T) {
	rec := httptest.NewRecorder()
	tenant.WriteProblem(rec, tenant.Problem{Status: http.StatusServiceUnavailable, RetryAfter: -1})
	if got := rec.Result().Header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After = %q for a negative RetryAfter, want none", got)
	}
}

func TestWriteProblemKeepsHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	challenge := `Bearer error="invalid_token", error_description="The token has expired."`
	rec.Header().Set("WWW-Authenticate", challenge)
	rec.Header().Set("RateLimit-Policy", `"default";q=100;w=60`)
	rec.Header().Set("Content-Type", "text/html") // replaced

	tenant.WriteProblem(rec, tenant.Problem{Type: tenant.ProblemType("unauthorized"), Title: "Unauthorized", Status: http.StatusUnauthorized})

	h := rec.Result().Header
	if got := h.Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate = %q, want %q", got, challenge)
	}
	if got := h.Get("RateLimit-Policy"); got != `"default";q=100;w=60` {
		t.Errorf("RateLimit-Policy = %q, want it kept", got)
	}
	if got := h.Values("Content-Type"); !cmp.Equal(got, []string{"application/problem+json"}) {
		t.Errorf("Content-Type = %q, want only application/problem+json", got)
	}
	if got := decodeProblem(t, rec); got.Status != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", got.Status)
	}
}

func TestWriteProblemOverServer(t *testing.T) {
	// Through a real connection, so that a wrong Content-Length would cut
	// or stall the body.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant.WriteProblem(w, tenant.Problem{Type: tenant.ProblemType("tenant-required"), Title: "Tenant required", Status: http.StatusUnauthorized, Detail: "This resource is only available to a tenant."})
	}))
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	var p tenant.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	want := tenant.Problem{Type: tenant.ProblemType("tenant-required"), Title: "Tenant required", Status: 401, Detail: "This resource is only available to a tenant."}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}
	if resp.ContentLength <= 0 {
		t.Errorf("ContentLength = %d, want the body's length", resp.ContentLength)
	}
	srv.Client().CloseIdleConnections()
}

func TestProblemType(t *testing.T) {
	if got, want := tenant.ProblemType("tenant-mismatch"), "https://github.com/tenancykit/tenancy/blob/main/docs/problems.md#tenant-mismatch"; got != want {
		t.Errorf("ProblemType = %q, want %q", got, want)
	}
}

func TestProblemError(t *testing.T) {
	var err error = tenant.Problem{Title: "Invalid tenant", Detail: "The request names a tenant that is not a valid tenant ID."}
	if got, want := err.Error(), "Invalid tenant: The request names a tenant that is not a valid tenant ID."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (tenant.Problem{Title: "Forbidden"}).Error(); got != "Forbidden" {
		t.Errorf("Error() without detail = %q, want Forbidden", got)
	}
}

// TestProblemTypesDocumented checks that every problem type this package
// writes has its anchor in docs/problems.md, where ProblemType points.
func TestProblemTypesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/problems.md")
	if err != nil {
		t.Fatalf("reading the problem documentation: %v", err)
	}
	anchors := map[string]int{}
	for _, m := range regexp.MustCompile(`<a id="([^"]+)"></a>`).FindAllStringSubmatch(string(doc), -1) {
		anchors[m[1]]++
	}
	for _, slug := range []string{"invalid-tenant", "tenant-mismatch", "tenant-required"} {
		if anchors[slug] != 1 {
			t.Errorf("docs/problems.md has %d anchors %q, want 1", anchors[slug], slug)
		}
	}
	for slug, n := range anchors {
		if n != 1 {
			t.Errorf("docs/problems.md has %d anchors %q, want 1", n, slug)
		}
	}
}
