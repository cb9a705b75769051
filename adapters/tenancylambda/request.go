package tenancylambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// errBase64Body is the defect of an event whose body is not the base64
// it claims to be.
var errBase64Body = errors.New("tenancylambda: the event's body is not valid base64")

// requestV1 builds the request of a payload version 1.0 event. The
// multi-value headers and query parameters are preferred: they hold every
// value, the single-value maps only the last.
func (h *Handler) requestV1(ctx context.Context, ev *events.APIGatewayProxyRequest) (*http.Request, error) {
	header := make(http.Header, max(len(ev.MultiValueHeaders), len(ev.Headers)))
	if len(ev.MultiValueHeaders) > 0 {
		for k, vs := range ev.MultiValueHeaders {
			for _, v := range vs {
				header.Add(k, v)
			}
		}
	} else {
		for k, v := range ev.Headers {
			header.Add(k, v)
		}
	}
	var query url.Values
	if len(ev.MultiValueQueryStringParameters) > 0 {
		query = url.Values(ev.MultiValueQueryStringParameters)
	} else if len(ev.QueryStringParameters) > 0 {
		query = make(url.Values, len(ev.QueryStringParameters))
		for k, v := range ev.QueryStringParameters {
			query.Set(k, v)
		}
	}
	rc := &ev.RequestContext
	return h.newRequest(ctx, event{
		method:     ev.HTTPMethod,
		path:       ev.Path,
		rawQuery:   query.Encode(),
		header:     header,
		body:       ev.Body,
		base64:     ev.IsBase64Encoded,
		host:       rc.DomainName,
		sourceIP:   rc.Identity.SourceIP,
		proto:      rc.Protocol,
		requestID:  rc.RequestID,
		authorizer: authorizerV1(rc.Authorizer),
	})
}

// requestV2 builds the request of an HTTP API event of payload version
// 2.0. Its headers come with repeated values joined by commas, which
// HTTP reads as the same list; its cookies become one Cookie header.
func (h *Handler) requestV2(ctx context.Context, ev *events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	header := make(http.Header, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		header.Add(k, v)
	}
	if len(ev.Cookies) > 0 {
		header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	rc := &ev.RequestContext
	path := ev.RawPath
	if path == "" {
		path = rc.HTTP.Path
	}
	return h.newRequest(ctx, event{
		method:     rc.HTTP.Method,
		path:       path,
		rawQuery:   ev.RawQueryString,
		header:     header,
		body:       ev.Body,
		base64:     ev.IsBase64Encoded,
		host:       rc.DomainName,
		sourceIP:   rc.HTTP.SourceIP,
		proto:      rc.HTTP.Protocol,
		requestID:  rc.RequestID,
		authorizer: authorizerV2(rc.Authorizer),
	})
}

// event is what a request is built from, whatever the payload version.
type event struct {
	method, path, rawQuery string
	header                 http.Header
	body                   string
	base64                 bool
	host, sourceIP, proto  string
	requestID              string
	authorizer             map[string]any // nil when there is none
}

// newRequest builds the request a net/http server would have read. The
// error is errBase64Body; the request is returned with it, for the
// response to be written to.
func (h *Handler) newRequest(ctx context.Context, e event) (*http.Request, error) {
	if e.authorizer != nil {
		ctx = context.WithValue(ctx, authorizerKey{}, e.authorizer)
	}
	hdr := e.header
	if e.requestID != "" {
		// API Gateway's ID, the one its own logs carry, wins over the
		// client's.
		hdr.Set(h.c.requestIDHeader, e.requestID)
	}
	if hdr.Get("Traceparent") == "" {
		if tp, ok := traceparent(ctx, hdr.Get("X-Amzn-Trace-Id")); ok {
			hdr.Set("Traceparent", tp)
		}
	}
	host := e.host
	if host == "" {
		host = hdr.Get("Host")
	}
	hdr.Del("Host") // as net/http's server: the host is r.Host
	u := requestURL(e.path, e.rawQuery)
	r := (&http.Request{
		Method:     strings.ToUpper(e.method),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: u.RequestURI(),
	}).WithContext(ctx)
	if major, minor, ok := http.ParseHTTPVersion(e.proto); ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = e.proto, major, minor
	}
	if e.sourceIP != "" {
		r.RemoteAddr = net.JoinHostPort(e.sourceIP, "0")
	}
	body := []byte(e.body)
	if e.base64 {
		var err error
		if body, err = base64.StdEncoding.DecodeString(e.body); err != nil {
			return r, errBase64Body
		}
	}
	if len(body) > 0 {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	return r, nil
}

// requestURL returns the URL of path and rawQuery. REST APIs send the
// path as the client sent it, escaped; HTTP APIs send it unescaped. The
// characters that cannot stand for themselves in an escaped path (a
// space, "?", "#", a "%" that starts no escape, non-ASCII) are escaped,
// so both become the same URL, except for an unescaped path that holds
// something that looks like an escape, which no one can tell apart.
func requestURL(path, rawQuery string) *url.URL {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	escaped := escapePath(path)
	u := &url.URL{RawQuery: rawQuery}
	if p, err := url.PathUnescape(escaped); err == nil {
		u.Path = p
		if escaped != u.EscapedPath() {
			u.RawPath = escaped
		}
	} else {
		u.Path = path // unreachable: escapePath leaves only valid escapes
	}
	return u
}

// escapePath escapes what cannot appear unescaped in a URL path.
func escapePath(p string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if pathChar(c) || c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// pathChar reports the characters RFC 3986 allows unescaped in a path:
// unreserved, sub-delims, ":", "@" and "/".
func pathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
