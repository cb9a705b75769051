package tenancylambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/tenancykit/tenancy/meter"
)

// Handler serves API Gateway proxy events with an http.Handler: it is a
// [lambda.Handler], for lambda.Start. A Handler is immutable once built
// and safe for concurrent use (a function with several invocations per
// process, AWS_LAMBDA_MAX_CONCURRENCY, runs them at once).
type Handler struct {
	next http.Handler
	c    config
	// flushErrs holds the kinds of meter flush errors already logged.
	flushErrs sync.Map
}

var _ lambda.Handler = (*Handler)(nil)

// Option configures a [Handler].
type Option func(*config)

type config struct {
	recorder        *meter.Recorder
	requestIDHeader string
	errs            []error
}

// WithRecorder delivers rec's usage after each invocation, with
// rec.FlushAll: the function's environment may be frozen, or ended, once
// the invocation returns, and a frozen process delivers nothing. Give rec
// meter.WithoutLoop, for there is no time between invocations to run a
// delivery loop in. A flush that fails does not fail the invocation: the
// response is returned, the records stay pending (in memory, or in the
// spool of meter.WithSpool) and are tried again at the next invocation, and
// the failure is logged through slog.Default at error level, once per kind
// of failure (the invocation's deadline, a cancelled context, a sink that
// took part of the records, other errors by the type of the error at their
// root). Default: nothing is flushed.
func WithRecorder(rec *meter.Recorder) Option {
	return func(c *config) {
		if rec == nil {
			c.errs = append(c.errs, errors.New("tenancylambda: WithRecorder: nil *meter.Recorder"))
		}
		c.recorder = rec
	}
}

// WithRequestIDHeader names the request header that carries API Gateway's
// request ID (requestContext.requestId) into the handler: the header the
// access log reads its request ID from, when logging.WithRequestIDHeader
// changed it. Default (also for "") "X-Request-Id", the access log's
// default.
func WithRequestIDHeader(name string) Option {
	return func(c *config) { c.requestIDHeader = name }
}

// New returns a Handler that serves the API Gateway proxy events of REST
// APIs and HTTP APIs with h, the service's handler inside the tenancy
// stack (stack.Wrap(mux)). Mistakes in the options are reported here.
func New(h http.Handler, opts ...Option) (*Handler, error) {
	if h == nil {
		return nil, errors.New("tenancylambda: New needs the handler to serve, such as stack.Wrap(mux)")
	}
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	if c.requestIDHeader == "" {
		c.requestIDHeader = "X-Request-Id"
	}
	c.requestIDHeader = http.CanonicalHeaderKey(c.requestIDHeader)
	return &Handler{next: h, c: c}, nil
}

// ErrUnknownEvent is wrapped by the error [Handler.Invoke] returns for a
// payload that is not an API Gateway proxy event it serves.
var ErrUnknownEvent = errors.New("tenancylambda: not an API Gateway proxy event")

// probe holds what tells the event kinds apart.
type probe struct {
	Version        string `json:"version"`
	HTTPMethod     string `json:"httpMethod"`
	RequestContext struct {
		ELB json.RawMessage `json:"elb"`
	} `json:"requestContext"`
}

// Invoke serves one event: an HTTP API event of payload version 2.0
// ("version": "2.0", answered with an events.APIGatewayV2HTTPResponse) or
// a REST API or HTTP API event of version 1.0 (an "httpMethod", answered
// with an events.APIGatewayProxyResponse). ctx, the invocation's, is the
// request's context. A payload that is neither is an error wrapping
// [ErrUnknownEvent]. An event whose body is not the base64 it says it is
// gets a 400 problem document without reaching the handler (so without an
// access line): a warning is logged through slog.Default instead.
//
// With [WithRecorder], the usage is delivered before Invoke returns,
// panics included.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if h.c.recorder != nil {
		defer h.flush(ctx)
	}
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("%w: the payload is not a JSON object: %w", ErrUnknownEvent, err)
	}
	switch {
	case len(p.RequestContext.ELB) > 0:
		return nil, fmt.Errorf("%w: an Application Load Balancer event; API Gateway REST (payload 1.0) and HTTP API (1.0, 2.0) events are served", ErrUnknownEvent)
	case p.Version == "2.0":
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("%w: an HTTP API event of payload version 2.0 that does not decode: %w", ErrUnknownEvent, err)
		}
		r, err := h.requestV2(ctx, &ev)
		return h.serve(r, err, responseV2)
	case (p.Version == "" || p.Version == "1.0") && p.HTTPMethod != "":
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("%w: an API Gateway event of payload version 1.0 that does not decode: %w", ErrUnknownEvent, err)
		}
		r, err := h.requestV1(ctx, &ev)
		return h.serve(r, err, responseV1)
	}
	got := "no version and no httpMethod"
	if p.Version != "" {
		got = "version " + strconv.Quote(truncate(p.Version, 16))
	}
	return nil, fmt.Errorf(`%w: want an API Gateway REST or HTTP API event of payload version 1.0 (with "httpMethod") or an HTTP API event of version 2.0 ("version": "2.0"), got %s`, ErrUnknownEvent, got)
}

// serve runs the handler on r, or answers the event's defect err, and
// encodes the response with encode.
func (h *Handler) serve(r *http.Request, err error, encode func(*responseWriter) any) (out []byte, invokeErr error) {
	w := newResponseWriter(r)
	if err != nil {
		writeBadEvent(w, err)
	} else {
		defer func() {
			// A handler that aborts its response (net/http closes the
			// connection) leaves API Gateway nothing to send: the
			// invocation fails, and API Gateway answers 502.
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					panic(p)
				}
				out, invokeErr = nil, errors.New("tenancylambda: the handler aborted the response (http.ErrAbortHandler)")
			}
		}()
		h.next.ServeHTTP(w, r)
	}
	return json.Marshal(encode(w))
}

// flush delivers the recorder's usage, logging a failure of a kind not
// logged before.
func (h *Handler) flush(ctx context.Context) {
	err := h.c.recorder.FlushAll(ctx)
	if err == nil {
		return
	}
	kind := flushErrorKind(err)
	if _, seen := h.flushErrs.LoadOrStore(kind, true); seen {
		return
	}
	slog.Default().ErrorContext(ctx, "tenancylambda: usage not delivered at the end of the invocation; the records stay pending and are tried again at the next one (this kind of failure is logged once)",
		"kind", kind, "error", err.Error())
}

// flushErrorKind names the kind of a flush failure: a few the function
// can act on, else the type of the error at the root of err's chain, so
// that the kinds are bounded by the program's error types.
func flushErrorKind(err error) string {
	var de *meter.DeliveryError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &de):
		return "partial delivery"
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return reflect.TypeOf(err).String()
		}
		err = next
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
