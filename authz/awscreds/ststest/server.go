// Package ststest is an STS endpoint for tests: it speaks AssumeRole's
// query protocol and XML response, so the real aws-sdk-go-v2 STS client
// can be pointed at it, records every call with the tags and policy it
// carried, and fails on demand.
//
//	srv := ststest.Start(t)
//	client := srv.Client()       // an *sts.Client for it
//	p, err := awscreds.New(client, "arn:aws:iam::123456789012:role/tenant")
package ststest

import (
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Call is one AssumeRole request as the server received it.
type Call struct {
	RoleARN         string
	RoleSessionName string
	DurationSeconds int
	Policy          string
	Tags            map[string]string
	TransitiveTags  []string
}

// Server is a fake STS. It is safe for concurrent use.
type Server struct {
	srv    *http.Server
	done   chan struct{}
	url    string
	client *http.Client

	mu       sync.Mutex
	calls    []Call
	failures map[string]string // tenant tag value ("" = every call) -> error code
	lifetime time.Duration
	now      func() time.Time
	serial   atomic.Int64
}

// TB is the part of testing.TB that Start uses.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Start starts a server that is closed when the test ends.
func Start(t TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a server on a free loopback port.
func NewServer() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		url:      "http://" + ln.Addr().String(),
		done:     make(chan struct{}),
		failures: map[string]string{},
		lifetime: time.Hour,
		now:      time.Now,
		client:   &http.Client{Transport: &http.Transport{}},
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the server and closes the client's idle connections.
func (s *Server) Close() {
	s.client.CloseIdleConnections()
	s.srv.Close()
	<-s.done
}

// URL is the endpoint.
func (s *Server) URL() string { return s.url }

// Client returns an STS client for the server, with static credentials.
func (s *Server) Client() *sts.Client {
	return sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSERVICE", "service-secret", ""),
		HTTPClient:   s.client,
		Retryer:      aws.NopRetryer{}, // a failure is seen at once, not after backoff
	})
}

// SetLifetime sets how long issued credentials last. Default one hour.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	s.lifetime = d
	s.mu.Unlock()
}

// Fail makes calls tagged with tenantID (tagKey's value; "" for every call)
// fail with the STS error code, such as "RegionDisabledException" or
// "Throttling"; an empty code clears it.
func (s *Server) Fail(tenantID, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == "" {
		delete(s.failures, tenantID)
		return
	}
	s.failures[tenantID] = code
}

// Calls returns the calls received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsFor returns how many calls carried tag TenantId=tenantID (or the
// given tag key's value, if the provider uses another key).
func (s *Server) CallsFor(tagKey, tenantID string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Tags[tagKey] == tenantID {
			n++
		}
	}
	return n
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "malformed request")
		return
	}
	if a := r.PostForm.Get("Action"); a != "AssumeRole" {
		writeError(w, http.StatusBadRequest, "InvalidAction", "only AssumeRole is served, got "+a)
		return
	}
	call, err := parseCall(r.PostForm)
	if err != nil {
		writeError(w, http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	code := s.failures[""]
	for id, c := range s.failures {
		if id != "" {
			for _, v := range call.Tags {
				if v == id {
					code = c
				}
			}
		}
	}
	lifetime, now := s.lifetime, s.now()
	s.mu.Unlock()
	if code != "" {
		status := http.StatusBadRequest
		if code == "Throttling" || code == "ServiceUnavailable" || code == "InternalFailure" {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, code, "injected failure")
		return
	}
	n := s.serial.Add(1)
	resp := assumeRoleResponse{
		Result: assumeRoleResult{
			Credentials: xmlCredentials{
				AccessKeyID:     fmt.Sprintf("ASIATENANT%06d", n),
				SecretAccessKey: "secret-" + strconv.FormatInt(n, 10),
				SessionToken:    "token-" + strconv.FormatInt(n, 10),
				Expiration:      now.Add(lifetime).UTC().Format(time.RFC3339),
			},
			AssumedRoleUser: assumedRoleUser{
				ARN:           strings.Replace(call.RoleARN, ":role/", ":assumed-role/", 1) + "/" + call.RoleSessionName,
				AssumedRoleID: "AROATEST:" + call.RoleSessionName,
			},
			PackedPolicySize: 10,
		},
		Metadata: responseMetadata{RequestID: "req-" + strconv.FormatInt(n, 10)},
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(resp)
}

func parseCall(f url.Values) (Call, error) {
	c := Call{
		RoleARN:         f.Get("RoleArn"),
		RoleSessionName: f.Get("RoleSessionName"),
		Policy:          f.Get("Policy"),
		Tags:            map[string]string{},
	}
	if c.RoleARN == "" || c.RoleSessionName == "" {
		return c, fmt.Errorf("RoleArn and RoleSessionName are required")
	}
	if d := f.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil {
			return c, fmt.Errorf("DurationSeconds %q", d)
		}
		c.DurationSeconds = n
	}
	for i := 1; ; i++ {
		k := f.Get(fmt.Sprintf("Tags.member.%d.Key", i))
		if k == "" {
			break
		}
		c.Tags[k] = f.Get(fmt.Sprintf("Tags.member.%d.Value", i))
	}
	for i := 1; ; i++ {
		k := f.Get(fmt.Sprintf("TransitiveTagKeys.member.%d", i))
		if k == "" {
			break
		}
		c.TransitiveTags = append(c.TransitiveTags, k)
	}
	sort.Strings(c.TransitiveTags)
	return c, nil
}

type assumeRoleResponse struct {
	XMLName  xml.Name         `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
	Result   assumeRoleResult `xml:"AssumeRoleResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type assumeRoleResult struct {
	Credentials      xmlCredentials  `xml:"Credentials"`
	AssumedRoleUser  assumedRoleUser `xml:"AssumedRoleUser"`
	PackedPolicySize int             `xml:"PackedPolicySize"`
}

type xmlCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUser struct {
	ARN           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type errorResponse struct {
	XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error     xmlError `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

type xmlError struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(errorResponse{Error: xmlError{Type: "Sender", Code: code, Message: msg}, RequestID: "err"})
}
