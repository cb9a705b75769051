package logging

import (
	"log/slog"
	"strings"
)

// Redacted replaces the value of a redacted attribute.
const Redacted = "[REDACTED]"

// DefaultRedactedKeys are attribute keys whose values are never written.
var DefaultRedactedKeys = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie",
	"password", "passwd", "secret", "client_secret", "token", "access_token",
	"id_token", "refresh_token", "api_key", "apikey", "x-api-key",
}

// redactor hides values under sensitive keys, and values that look like a
// JSON Web Token under any key.
type redactor struct {
	keys map[string]struct{}
	// lengths has bit n set when some key is n bytes long (n < 64), so
	// most keys are cleared without a map lookup.
	lengths uint64
	long    bool // some key is 64 bytes or longer
}

func newRedactor(extra []string) *redactor {
	r := &redactor{keys: make(map[string]struct{})}
	for _, k := range append(append([]string(nil), DefaultRedactedKeys...), extra...) {
		r.keys[strings.ToLower(k)] = struct{}{}
		if len(k) < 64 {
			r.lengths |= 1 << len(k)
		} else {
			r.long = true
		}
	}
	return r
}

// needed reports whether any attribute of rec would be changed by attr.
func (r *redactor) needed(rec slog.Record) bool {
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

func (r *redactor) sensitive(key string) bool {
	if n := len(key); n < 64 && r.lengths&(1<<n) == 0 || n >= 64 && !r.long {
		return false
	}
	if _, ok := r.keys[key]; ok {
		return true
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; 'A' <= c && c <= 'Z' {
			_, ok := r.keys[strings.ToLower(key)]
			return ok
		}
	}
	return false
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
		if err, ok := a.Value.Any().(error); ok && looksLikeJWT(err.Error()) {
			return slog.String(a.Key, Redacted)
		}
	}
	return a
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
