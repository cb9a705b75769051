package tenant

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problemTypeBase prefixes the type URI of every problem this module
// writes. Each type is documented under its anchor in docs/problems.md.
const problemTypeBase = "https://github.com/tenancykit/tenancy/blob/main/docs/problems.md#"

// Problem is an RFC 9457 problem document. Detail is for the client: it must
// never carry Go error text, a token or a secret.
type Problem struct {
	// Type is a URI naming the kind of problem; [ProblemType] builds the
	// module's own. Empty means "about:blank".
	Type string `json:"type,omitempty"`
	// Title is a short summary that does not change between occurrences.
	Title string `json:"title"`
	// Status is the HTTP status code. Zero means 500.
	Status int `json:"status"`
	// Detail explains this occurrence to the client.
	Detail string `json:"detail,omitempty"`
	// Instance identifies this occurrence, such as the request ID.
	Instance string `json:"instance,omitempty"`
	// RetryAfter, when positive, is also sent as the Retry-After header, in
	// whole seconds.
	RetryAfter int `json:"retry_after,omitempty"`
}

// ProblemType returns the type URI of the module's problem named slug, such
// as "tenant-required": its anchor in docs/problems.md.
func ProblemType(slug string) string { return problemTypeBase + slug }

// Error makes a Problem usable as an error, for code that returns one up to
// a handler that writes it.
func (p Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// WriteProblem writes p as an application/problem+json response. Any header
// the caller set before (WWW-Authenticate, RateLimit) is kept.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	body, err := json.Marshal(p)
	if err != nil { // unreachable: every field is a string or an int
		body = []byte(`{"title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	w.Write(append(body, '\n'))
}
