package servicetest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Problem is an RFC 9457 problem document as the services send it.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// WantProblem checks that r is a problem document with the given status,
// with no other fields, and returns it.
func WantProblem(t testing.TB, r Response, status int) Problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p Problem
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem: %v in %s", err, r.Body)
	}
	if p.Status != status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v: want status %d, a title and a type", p, status)
	}
	return p
}

// LogLine is one JSON line of a service's stdout.
type LogLine map[string]any

// Str returns the string at key, or "".
func (l LogLine) Str(key string) string {
	s, _ := l[key].(string)
	return s
}

// Lines parses every line the service wrote on stdout so far; see
// [ParseLines].
func (s *Service) Lines(t testing.TB) []LogLine {
	t.Helper()
	return ParseLines(t, s.Stdout.String())
}

// ParseLines decodes every line of out, failing the test at the first
// that is not a JSON object: the services' stdout carries nothing else.
func ParseLines(t testing.TB, out string) []LogLine {
	t.Helper()
	var lines []LogLine
	for i, text := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if text == "" {
			continue
		}
		var l LogLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			t.Fatalf("stdout line %d is not a JSON object: %v\n%s", i+1, err, text)
		}
		lines = append(lines, l)
	}
	return lines
}

// RequestLines returns the lines logged for requests: those with a
// request_id.
func RequestLines(lines []LogLine) []LogLine {
	var out []LogLine
	for _, l := range lines {
		if l.Str("request_id") != "" {
			out = append(out, l)
		}
	}
	return out
}

// LinesWhere returns the lines that have every field of want.
func LinesWhere(lines []LogLine, want LogLine) []LogLine {
	var out []LogLine
next:
	for _, l := range lines {
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// OneLine returns the only line that has every field of want, failing the
// test unless there is exactly one.
func OneLine(t testing.TB, lines []LogLine, want LogLine) LogLine {
	t.Helper()
	got := LinesWhere(lines, want)
	if len(got) != 1 {
		t.Fatalf("%d lines with %v, want 1; lines:\n%v", len(got), want, lines)
	}
	return got[0]
}

// WantFields checks that l has every field of want; what names the line
// in the errors.
func WantFields(t testing.TB, what string, l LogLine, want LogLine) {
	t.Helper()
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s: %s = %v, want %v; line %v", what, k, l[k], v, l)
		}
	}
}
