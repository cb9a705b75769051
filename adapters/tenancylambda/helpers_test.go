package tenancylambda_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
)

// loadV1 reads a REST API event (payload version 1.0) from testdata.
func loadV1(t *testing.T, name string) events.APIGatewayProxyRequest {
	t.Helper()
	var ev events.APIGatewayProxyRequest
	load(t, name, &ev)
	return ev
}

// loadV2 reads an HTTP API event (payload version 2.0) from testdata.
func loadV2(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	load(t, name, &ev)
	return ev
}

func load(t *testing.T, name string, ev any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// newHandler returns the Handler of next, failing the test on error.
func newHandler(t *testing.T, next http.Handler, opts ...tenancylambda.Option) *tenancylambda.Handler {
	t.Helper()
	h, err := tenancylambda.New(next, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// invoke gives ev to h as the Lambda runtime would, JSON encoded, and
// decodes the response into res.
func invoke(t *testing.T, ctx context.Context, h *tenancylambda.Handler, ev, res any) {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if err := json.Unmarshal(out, res); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
}

func invokeV1(t *testing.T, ctx context.Context, h *tenancylambda.Handler, ev events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	var res events.APIGatewayProxyResponse
	invoke(t, ctx, h, ev, &res)
	return res
}

func invokeV2(t *testing.T, ctx context.Context, h *tenancylambda.Handler, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var res events.APIGatewayV2HTTPResponse
	invoke(t, ctx, h, ev, &res)
	return res
}

// seen is what a handler saw of its request.
type seen struct {
	r    *http.Request
	body string
}

// recorder returns a handler that records the request into s and
// answers 204.
func recorder(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.r, s.body = r, string(b)
		w.WriteHeader(http.StatusNoContent)
	})
}

// accessLines decodes the JSON lines of logs.
func accessLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}
