package kit

import (
	"encoding/json"
	"net/http"

	"github.com/tenancykit/tenancy/tenant"
)

// WithHealthz returns the handler of a whole service: GET /healthz
// answered at once, without a token, a limit, metering or an access line
// (load balancers ask it every few seconds), and every other request
// served by h, the tenancy stack.
func WithHealthz(h http.Handler) http.Handler {
	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", healthz)
	root.Handle("/", h)
	return root
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// WriteJSON answers with v as JSON and status. Answers differ by tenant,
// so no shared cache may keep one (Cache-Control: no-store).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // unreachable for the examples' answers: strings, numbers and times
		tenant.WriteProblem(w, tenant.Problem{Status: http.StatusInternalServerError})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
