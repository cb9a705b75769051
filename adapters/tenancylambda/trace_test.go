package tenancylambda_test

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"testing"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/logging"
)

// accessLogged returns a Handler of a stack with only the access log,
// around next, and the buffer its lines go to.
func accessLogged(t *testing.T, next http.Handler) (*syncbuf.Buffer, http.Handler) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	stack, err := tenancy.New(tenancy.WithAccessLog(slog.New(logging.NewHandler(slog.NewJSONHandler(logs, nil)))))
	if err != nil {
		t.Fatal(err)
	}
	return logs, stack.Wrap(next)
}

// TestRequestID: the access line's request_id, and the response's
// X-Request-Id, are API Gateway's request ID, not the client's.
func TestRequestID(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		logs, next := accessLogged(t, http.NotFoundHandler())
		ev := loadV1(t, "rest-cognito.json") // its client sent an X-Request-Id of its own
		res := invokeV1(t, context.Background(), newHandler(t, next), ev)
		checkRequestID(t, logs, res.Headers["X-Request-Id"], "c6af9ac6-7b61-11e6-9a41-93e8deadbeef")
	})
	t.Run("v2", func(t *testing.T) {
		// HTTP API request IDs end in "=".
		logs, next := accessLogged(t, http.NotFoundHandler())
		ev := loadV2(t, "http-jwt.json")
		ev.Headers["x-request-id"] = "chosen-by-the-client"
		res := invokeV2(t, context.Background(), newHandler(t, next), ev)
		checkRequestID(t, logs, res.Headers["X-Request-Id"], "LV7fzho-PHcEJPw=")
	})
	t.Run("another header", func(t *testing.T) {
		logs := &syncbuf.Buffer{}
		stack, err := tenancy.New(tenancy.WithAccessLog(slog.New(logging.NewHandler(slog.NewJSONHandler(logs, nil))), logging.WithRequestIDHeader("X-Correlation-Id")))
		if err != nil {
			t.Fatal(err)
		}
		h := newHandler(t, stack.Wrap(http.NotFoundHandler()), tenancylambda.WithRequestIDHeader("x-correlation-id"))
		res := invokeV1(t, context.Background(), h, loadV1(t, "rest-cognito.json"))
		checkRequestID(t, logs, res.Headers["X-Correlation-Id"], "c6af9ac6-7b61-11e6-9a41-93e8deadbeef")
	})
}

func checkRequestID(t *testing.T, logs *syncbuf.Buffer, echoed, want string) {
	t.Helper()
	lines := accessLines(t, logs.String())
	if len(lines) != 1 || lines[0]["request_id"] != want {
		t.Errorf("access lines %v, want one with request_id %q", lines, want)
	}
	if echoed != want {
		t.Errorf("response request ID %q, want %q", echoed, want)
	}
}

// TestTraceFromXRay: a request without a traceparent gets one made from
// the X-Ray trace header, API Gateway's X-Amzn-Trace-Id or else the Lambda
// invocation's, so that its log lines carry the X-Ray trace ID; a
// malformed header counts as none, and a client's traceparent wins.
func TestTraceFromXRay(t *testing.T) {
	const (
		xray       = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
		traceID    = "5759e988bd862e3fe1be46a994272793"
		fromXRay   = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
		ctxXRay    = "Root=1-67891233-abcdef012345678912345678;Parent=463ac35c9f6413ad;Sampled=0;Lineage=a87bd80c:1|68fd508a:5"
		ctxTraceID = "67891233abcdef012345678912345678"
	)
	anyParent := func(trace, flags string) *regexp.Regexp {
		return regexp.MustCompile(`^00-` + trace + `-[0-9a-f]{16}-` + flags + `$`)
	}
	for _, tc := range []struct {
		name        string
		header      string // X-Amzn-Trace-Id, "" for none
		ctx         string // the invocation's trace header, "" for none
		traceparent string // the client's, "" for none
		want        *regexp.Regexp
		wantTrace   string // the access line's trace_id; "" for a new one
	}{
		{"header", xray, "", "", regexp.MustCompile("^" + fromXRay + "$"), traceID},
		{"header over context", xray, ctxXRay, "", regexp.MustCompile("^" + fromXRay + "$"), traceID},
		{"context", "", ctxXRay, "", regexp.MustCompile("^00-" + ctxTraceID + "-463ac35c9f6413ad-00$"), ctxTraceID},
		{"header without parent: API Gateway not tracing", "Root=1-5759e988-bd862e3fe1be46a994272793", "", "", anyParent(traceID, "00"), traceID},
		{"undecided sampling, spaces, Self", "Self=1-67891233-12456789abcdef012345678; Root=1-5759e988-bd862e3fe1be46a994272793; Parent=53995c3f42cd8ad8; Sampled=?", "", "", regexp.MustCompile("^00-" + traceID + "-53995c3f42cd8ad8-00$"), traceID},
		{"upper case", "Root=1-5759E988-BD862E3FE1BE46A994272793;Parent=53995C3F42CD8AD8;Sampled=1", "", "", regexp.MustCompile("^" + fromXRay + "$"), traceID},
		{"malformed header: context", "Root=2-5759e988-bd862e3fe1be46a994272793", ctxXRay, "", regexp.MustCompile("^00-" + ctxTraceID + "-463ac35c9f6413ad-00$"), ctxTraceID},
		{"client's traceparent", xray, ctxXRay, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", regexp.MustCompile("^00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01$"), "0af7651916cd43dd8448eb211c80319c"},
		{"none", "", "", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkTrace(t, tc.header, tc.ctx, tc.traceparent, tc.want, tc.wantTrace)
		})
	}
	for _, bad := range []string{
		"",
		"Root=",
		"Root=1-5759e988-bd862e3fe1be46a99427279",                                    // short
		"Root=1-5759e988-bd862e3fe1be46a9942727930",                                  // long
		"Root=1-5759e988bd862e3fe1be46a994272793",                                    // no second dash
		"Root=1_5759e988-bd862e3fe1be46a994272793",                                   // no first dash
		"Root=2-5759e988-bd862e3fe1be46a994272793",                                   // version 2
		"Root=1-5759e98g-bd862e3fe1be46a994272793",                                   // not hex
		"Root=1-00000000-000000000000000000000000",                                   // all zero
		"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",            // short parent
		"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",           // zero parent
		"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8adx",           // not hex
		"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=2", // sampled
		"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=",
		"Root=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272794", // twice
		"Parent=53995c3f42cd8ad8;Sampled=1",                                                 // no root
		"garbage",
	} {
		t.Run("malformed "+bad, func(t *testing.T) {
			checkTrace(t, bad, bad, "", nil, "")
		})
	}
}

// checkTrace invokes an event with the X-Ray header header (none for ""),
// the invocation trace ctxTrace and the client's traceparent, and checks
// the traceparent the handler saw (none when want is nil) and the access
// line's trace_id (a new one when wantTrace is "").
func checkTrace(t *testing.T, header, ctxTrace, traceparent string, want *regexp.Regexp, wantTrace string) {
	t.Helper()
	var s seen
	logs, next := accessLogged(t, recorder(&s))
	ev := loadV2(t, "http-jwt.json")
	delete(ev.Headers, "x-amzn-trace-id")
	if header != "" {
		ev.Headers["x-amzn-trace-id"] = header
	}
	if traceparent != "" {
		ev.Headers["traceparent"] = traceparent
	}
	ctx := context.Background()
	if ctxTrace != "" {
		// As aws-lambda-go's runtime loop puts it.
		//lint:ignore SA1029 the runtime's key is this plain string
		ctx = context.WithValue(ctx, "x-amzn-trace-id", ctxTrace)
	}
	invokeV2(t, ctx, newHandler(t, next), ev)
	got := s.r.Header.Get("Traceparent")
	switch {
	case want == nil && got != "":
		t.Errorf("traceparent %q, want none", got)
	case want != nil && !want.MatchString(got):
		t.Errorf("traceparent %q, want %v", got, want)
	}
	lines := accessLines(t, logs.String())
	if len(lines) != 1 {
		t.Fatalf("access lines %v, want one", lines)
	}
	tid, _ := lines[0]["trace_id"].(string)
	switch {
	case wantTrace != "" && tid != wantTrace:
		t.Errorf("trace_id %q, want %q", tid, wantTrace)
	case wantTrace == "" && (len(tid) != 32 || tid == "5759e988bd862e3fe1be46a994272793"):
		t.Errorf("trace_id %q, want a new one", tid)
	}
}
