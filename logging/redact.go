package logging

import (
	"log/slog"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redacted replaces the value of a redacted attribute.
const Redacted = "[REDACTED]"

// DefaultRedactedKeys returns the attribute keys whose values a [Handler]
// never writes unless told otherwise: HTTP credentials, passwords and
// secrets, OAuth tokens, API keys, AWS credentials and signatures. Keys
// are compared by their normal form (see [WithRedactedKeys]), so
// session_token also stands for SessionToken and session-token. Each call
// returns a new slice.
func DefaultRedactedKeys() []string {
	return []string{
		"authorization", "proxy-authorization", "cookie", "set-cookie", "bearer",
		"password", "passwd", "secret", "client_secret", "private_key",
		"token", "access_token", "id_token", "refresh_token", "api_key", "x-api-key",
		"secret_access_key", "aws_secret_access_key", "session_token", "aws_session_token",
		"x-amz-security-token", "x-amz-signature",
	}
}

// redactor hides values under sensitive keys, and values that look like a
// JSON Web Token under any key.
type redactor struct {
	keys map[string]struct{} // normal forms, see normalKey
	// A key is looked up only when it is at least minLen bytes long and
	// its first and its last byte (ASCII folded to lower case) each match
	// some sensitive key's, so that most keys are cleared without a scan.
	minLen        int
	firsts, lasts [4]uint64
}

func newRedactor(extra []string) *redactor {
	r := &redactor{keys: make(map[string]struct{})}
	r.minLen = -1
	for _, k := range append(DefaultRedactedKeys(), extra...) {
		nk := normalKey(k)
		if nk == "" {
			continue
		}
		r.keys[nk] = struct{}{}
		// Case folding maps a rune to one rune, so a key that
		// normalises to nk has at least as many bytes as nk has runes.
		if n := utf8.RuneCountInString(nk); r.minLen < 0 || n < r.minLen {
			r.minLen = n
		}
		setBit(&r.firsts, nk[0])
		setBit(&r.lasts, nk[len(nk)-1])
	}
	if r.minLen < 0 {
		r.minLen = 0
	}
	// A key may start or end with separators that normalKey drops.
	for _, c := range []byte{'-', '_'} {
		setBit(&r.firsts, c)
		setBit(&r.lasts, c)
	}
	return r
}

// normalKey is the form keys are compared in: lower case, without '-' and
// '_', so that SessionToken, session_token and SESSION-TOKEN are one key.
func normalKey(k string) string {
	return strings.Map(func(c rune) rune {
		if c == '-' || c == '_' {
			return -1
		}
		return unicode.ToLower(c)
	}, k)
}

func setBit(set *[4]uint64, c byte)      { set[c>>6] |= 1 << (c & 63) }
func hasBit(set *[4]uint64, c byte) bool { return set[c>>6]&(1<<(c&63)) != 0 }

// foldASCII lower-cases an ASCII letter.
func foldASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// needed reports whether any attribute of rec would be changed by attr.
func (r *redactor) needed(rec *slog.Record) bool {
	found := false
	rec.Attrs(func(a slog.Attr) bool {
		found = r.changes(a)
		return !found
	})
	return found
}

func (r *redactor) changes(a slog.Attr) bool {
	if r.sensitive(a.Key) {
		return true
	}
	switch a.Value.Kind() {
	case slog.KindString:
		return looksLikeJWT(a.Value.String())
	case slog.KindGroup, slog.KindLogValuer, slog.KindAny:
		return true // rare enough to take the slow path
	}
	return false
}

func (r *redactor) attrs(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.attr(a)
	}
	return out
}

// sensitive reports whether values under key are redacted.
func (r *redactor) sensitive(key string) bool {
	n := len(key)
	if n < r.minLen || n == 0 {
		return false
	}
	// Non-ASCII bytes may change under case folding: no shortcut then.
	if c := key[0]; c < utf8.RuneSelf && !hasBit(&r.firsts, foldASCII(c)) {
		return false
	}
	if c := key[n-1]; c < utf8.RuneSelf && !hasBit(&r.lasts, foldASCII(c)) {
		return false
	}
	var b [64]byte // normalise on the stack: no allocation per record
	m := 0
	for i := 0; i < n; i++ {
		c := key[i]
		if c >= utf8.RuneSelf || m == len(b) {
			_, ok := r.keys[normalKey(key)]
			return ok
		}
		if c != '-' && c != '_' {
			b[m] = foldASCII(c)
			m++
		}
	}
	_, ok := r.keys[string(b[:m])]
	return ok
}

func (r *redactor) attr(a slog.Attr) slog.Attr {
	if r.sensitive(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if looksLikeJWT(a.Value.String()) {
			return slog.String(a.Key, Redacted)
		}
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(r.attrs(a.Value.Group())...)}
	case slog.KindLogValuer:
		return r.attr(slog.Attr{Key: a.Key, Value: a.Value.Resolve()})
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			if looksLikeJWT(v.Error()) {
				return slog.String(a.Key, Redacted)
			}
		case http.Header:
			// Logging r.Header is common; it holds Authorization and Cookie.
			return slog.Any(a.Key, r.header(v))
		}
	}
	return a
}

// header returns h, or a copy of h with the values of sensitive fields
// and token-shaped values replaced.
func (r *redactor) header(h http.Header) http.Header {
	var out http.Header
	for k, vs := range h {
		sensitive := r.sensitive(k)
		for i, v := range vs {
			if !sensitive && !looksLikeJWT(v) {
				continue
			}
			if out == nil {
				out = h.Clone()
			}
			if sensitive {
				out[k] = []string{Redacted}
				break
			}
			out[k][i] = Redacted
		}
	}
	if out == nil {
		return h
	}
	return out
}

// looksLikeJWT reports whether s contains something shaped like a compact
// JWS: "eyJ" (the base64url of `{"`), base64url characters, a dot, more,
// a dot.
func looksLikeJWT(s string) bool {
	for {
		i := strings.Index(s, "eyJ")
		if i < 0 {
			return false
		}
		s = s[i:]
		dots, j := 0, 0
		for ; j < len(s); j++ {
			c := s[j]
			if c == '.' {
				dots++
				continue
			}
			if !isB64URL(c) {
				break
			}
		}
		if dots >= 2 && j > 20 {
			return true
		}
		s = s[3:]
	}
}

func isB64URL(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
