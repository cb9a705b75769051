package logging

import (
	"log/slog"
	"strings"
	"sync"
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

	types sync.Map // reflect.Type → bool, see mayHide
	plans sync.Map // reflect.Type → *structPlan
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

// hasSensitiveKey reports whether any of keys is redacted; an access log
// asks it once per line, of its fixed keys, which WithRedactedKeys could
// name.
func (r *redactor) hasSensitiveKey(keys []string) bool {
	for _, k := range keys {
		if r.sensitive(k) {
			return true
		}
	}
	return false
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
	if v, ok := r.value(a.Value, 0); ok {
		return slog.Attr{Key: a.Key, Value: v}
	}
	return a
}

// value returns v redacted and true, or v and false when v holds nothing
// to redact. depth counts the values walked into on the way to v.
func (r *redactor) value(v slog.Value, depth int) (slog.Value, bool) {
	switch v.Kind() {
	case slog.KindString:
		if looksLikeJWT(v.String()) {
			return slog.StringValue(Redacted), true
		}
	case slog.KindGroup:
		return slog.GroupValue(r.attrs(v.Group())...), true
	case slog.KindLogValuer:
		// Resolve once, here: the next handler must not call LogValue
		// again and write what it returns unredacted.
		rv := v.Resolve()
		if red, ok := r.value(rv, depth); ok {
			return red, true
		}
		return rv, true
	case slog.KindAny:
		return r.anyValue(v.Any(), depth)
	}
	return v, false
}

// looksLikeJWT reports whether s contains something shaped like a compact
// JWS: "eyJ" (the base64url of `{"`), base64url characters, a dot, more,
// a dot.
func looksLikeJWT(s string) bool {
	i, _ := indexJWT(s)
	return i >= 0
}

// indexJWT returns the start and end of the first JWT-shaped run in s, or
// -1, -1.
func indexJWT(s string) (start, end int) {
	off := 0
	for {
		i := strings.Index(s[off:], "eyJ")
		if i < 0 {
			return -1, -1
		}
		off += i
		dots, j := 0, off
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
		if dots >= 2 && j-off > 20 {
			return off, j
		}
		off += 3
	}
}

// scrubJWT replaces every JWT-shaped run in s with [Redacted].
func scrubJWT(s string) string {
	var b strings.Builder
	for {
		i, j := indexJWT(s)
		if i < 0 {
			if b.Len() == 0 {
				return s
			}
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(Redacted)
		s = s[j:]
	}
}

func isB64URL(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
