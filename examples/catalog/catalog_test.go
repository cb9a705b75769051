package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// service is the catalog running in this process, reached over real HTTP
// on a loopback port.
type service struct {
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	client *http.Client
	cancel context.CancelFunc

	done     chan error
	waitOnce sync.Once
	err      error
}

// startService runs the catalog with env as its environment until the test
// ends, and checks then that it stopped cleanly.
func startService(t *testing.T, env map[string]string, opts ...runOption) *service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &service{
		stdout: new(syncBuffer),
		stderr: new(syncBuffer),
		client: newClient(t),
		cancel: cancel,
		done:   make(chan error, 1),
	}
	ready := make(chan string, 1)
	opts = append(opts, withReady(func(addr string) { ready <- addr }))
	getenv := func(name string) string { return env[name] }
	go func() { s.done <- run(ctx, []string{"catalog"}, getenv, s.stdout, s.stderr, opts...) }()
	select {
	case addr := <-ready:
		s.url = "http://" + addr
	case err := <-s.done:
		cancel()
		t.Fatalf("run returned before serving: %v\nstderr:\n%s", err, s.stderr)
	}
	t.Cleanup(func() {
		s.cancel()
		if err := s.wait(); err != nil {
			t.Errorf("run returned %v, want nil", err)
		}
	})
	return s
}

// wait returns what run returned, waiting for it.
func (s *service) wait() error {
	s.waitOnce.Do(func() { s.err = <-s.done })
	return s.err
}

// startIssuer starts an issuer of tokens for the audience catalog-test.
func startIssuer(t *testing.T) *authztest.Issuer {
	t.Helper()
	return authztest.Start(t, authztest.WithAudience("catalog-test"))
}

// startForIssuer starts the catalog verifying the tokens of iss, with env
// added to its environment.
func startForIssuer(t *testing.T, iss *authztest.Issuer, env map[string]string, opts ...runOption) *service {
	t.Helper()
	all := map[string]string{
		"ADDR":          "127.0.0.1:0",
		"AUTH_ISSUER":   iss.URL(),
		"AUTH_AUDIENCE": iss.Audience(),
	}
	maps.Copy(all, env)
	return startService(t, all, opts...)
}

// newClient returns a client with its own connections, closed when the
// test ends, so that no connection outlives the test (goleak).
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// get sends GET path with token (none when empty) and the extra headers,
// and returns the whole response.
func (s *service) get(t *testing.T, path, token string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, s.client, req)
}

func send(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// decodeProduct checks that r is a 200 with exactly the documented fields
// and returns the product.
func decodeProduct(t *testing.T, r response) product {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &fields); err != nil {
		t.Fatalf("product: %v in %s", err, r.body)
	}
	if diff := cmp.Diff([]string{"item", "tenant_id", "unit_price_cents"}, slices.Sorted(maps.Keys(fields))); diff != "" {
		t.Fatalf("product fields (-want +got):\n%s", diff)
	}
	var p product
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("product: %v in %s", err, r.body)
	}
	return p
}

// problem is an RFC 9457 problem document as the service sends it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// wantProblem checks that r is a problem document with the given status
// and returns it.
func wantProblem(t *testing.T, r response, status int) problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p problem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem: %v in %s", err, r.body)
	}
	if p.Status != status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v: want status %d, a title and a type", p, status)
	}
	return p
}

// logLine is one JSON log line.
type logLine map[string]any

func (l logLine) str(key string) string {
	s, _ := l[key].(string)
	return s
}

// parseLines decodes every line of out, failing on one that is not a JSON
// object: stdout carries nothing else.
func parseLines(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	for _, text := range strings.Split(strings.TrimSpace(out), "\n") {
		if text == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			t.Fatalf("log line is not a JSON object: %v: %s", err, text)
		}
		lines = append(lines, l)
	}
	return lines
}

// requestLines returns the lines logged for requests: those with a
// request_id.
func requestLines(lines []logLine) []logLine {
	var out []logLine
	for _, l := range lines {
		if l.str("request_id") != "" {
			out = append(out, l)
		}
	}
	return out
}

// syncBuffer collects output written while the test reads it.
type syncBuffer = syncbuf.Buffer
