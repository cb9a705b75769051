package tenancylambda

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/tenancykit/tenancy/tenant"
)

// responseWriter buffers a response for the event that carries it back.
// Like net/http's, it sends the header as it was at WriteHeader (or the
// first Write), detects a Content-Type the handler did not set from the
// body, and drops the body of a HEAD request. It does not stream: Flush is not offered.
type responseWriter struct {
	header  http.Header
	sent    http.Header // the header as sent, at WriteHeader
	status  int
	body    bytes.Buffer
	noBody  bool // HEAD
	written bool
}

func newResponseWriter(r *http.Request) *responseWriter {
	return &responseWriter{header: http.Header{}, noBody: r != nil && r.Method == http.MethodHead}
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.written || status < 200 {
		return // informational responses go nowhere: the event has one
	}
	w.written, w.status = true, status
	w.sent = w.header.Clone()
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.noBody {
		return len(p), nil
	}
	return w.body.Write(p)
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// result returns the status, the header sent and the body: as text when
// the content type is textual and the body valid UTF-8, else in base64.
func (w *responseWriter) result() (status int, h http.Header, body string, isBase64 bool) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	b := w.body.Bytes()
	if len(b) == 0 {
		return w.status, w.sent, "", false
	}
	if _, set := w.sent["Content-Type"]; !set {
		w.sent.Set("Content-Type", http.DetectContentType(b))
	}
	if textual(w.sent) && utf8.Valid(b) {
		return w.status, w.sent, string(b), false
	}
	return w.status, w.sent, base64.StdEncoding.EncodeToString(b), true
}

// textual reports whether a response of header h is text that API Gateway
// may carry as it is: text/*, JSON, XML, JavaScript or a form, and not
// compressed.
func textual(h http.Header) bool {
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return false
	}
	typ, sub, _ := strings.Cut(mt, "/")
	switch {
	case typ == "text":
		return true
	case typ != "application":
		return false
	case sub == "json", sub == "xml", sub == "javascript", sub == "ecmascript", sub == "x-javascript",
		sub == "x-www-form-urlencoded", strings.HasSuffix(sub, "+json"), strings.HasSuffix(sub, "+xml"):
		return true
	}
	return false
}

// responseV1 is the response of a payload version 1.0 event. API Gateway
// merges headers and multiValueHeaders, taking a name's values from
// multiValueHeaders; headers holds each name's first value, for readers
// of the single-value form.
func responseV1(w *responseWriter) any {
	status, h, body, b64 := w.result()
	res := events.APIGatewayProxyResponse{StatusCode: status, Body: body, IsBase64Encoded: b64}
	if len(h) > 0 {
		res.Headers = make(map[string]string, len(h))
		res.MultiValueHeaders = make(map[string][]string, len(h))
		for k, vs := range h {
			if len(vs) > 0 {
				res.Headers[k] = vs[0]
				res.MultiValueHeaders[k] = vs
			}
		}
	}
	return res
}

// responseV2 is the response of an HTTP API event of payload version 2.0:
// a header's values joined by ", ", which HTTP reads as the same list,
// except Set-Cookie, whose values cannot be joined: they go in cookies.
func responseV2(w *responseWriter) any {
	status, h, body, b64 := w.result()
	res := events.APIGatewayV2HTTPResponse{StatusCode: status, Body: body, IsBase64Encoded: b64}
	if len(h) > 0 {
		res.Headers = make(map[string]string, len(h))
		for k, vs := range h {
			switch {
			case len(vs) == 0:
			case k == "Set-Cookie":
				res.Cookies = vs
			default:
				res.Headers[k] = strings.Join(vs, ", ")
			}
		}
	}
	return res
}

// writeBadEvent answers an event the handler cannot be given. Only a body
// that is not the base64 it claims to be gets here: API Gateway encodes
// bodies itself, so whoever sent the event is not API Gateway, or not a
// client, and the warning says so.
func writeBadEvent(w http.ResponseWriter, err error) {
	slog.Default().Warn("tenancylambda: event refused with 400", "error", err.Error())
	tenant.WriteProblem(w, tenant.Problem{
		Title:  "Bad Request",
		Status: http.StatusBadRequest,
		Detail: "The request body is not the base64 the event says it is.",
	})
}
