// Package claimpath reads the names of token claims the module's claim
// mappings accept: a top-level claim, or a path of dot-separated segments
// into nested objects, where a segment in double quotes may hold dots
// (resource_access."notes.api".roles) and, escaped with a backslash,
// quotes and backslashes.
package claimpath

import (
	"errors"
	"strings"
)

// Split returns the segments of the path name. A name without quotes is
// split on its dots.
func Split(name string) ([]string, error) {
	if name == "" {
		return nil, errors.New("empty claim name")
	}
	if !strings.Contains(name, `"`) {
		parts := strings.Split(name, ".")
		for _, p := range parts {
			if p == "" {
				return nil, errors.New("empty segment in claim path " + quote(name))
			}
		}
		return parts, nil
	}
	var (
		parts []string
		seg   strings.Builder
	)
	for i := 0; i < len(name); {
		if name[i] == '"' {
			i++
			closed := false
			for i < len(name) {
				c := name[i]
				if c == '\\' && i+1 < len(name) && (name[i+1] == '"' || name[i+1] == '\\') {
					seg.WriteByte(name[i+1])
					i += 2
					continue
				}
				i++
				if c == '"' {
					closed = true
					break
				}
				seg.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("unterminated quote in claim path " + quote(name))
			}
			if i < len(name) && name[i] != '.' {
				return nil, errors.New("a quoted segment must be followed by a dot in claim path " + quote(name))
			}
		} else {
			for i < len(name) && name[i] != '.' {
				if name[i] == '"' {
					return nil, errors.New("a quote inside a segment in claim path " + quote(name))
				}
				seg.WriteByte(name[i])
				i++
			}
			if seg.Len() == 0 {
				return nil, errors.New("empty segment in claim path " + quote(name))
			}
		}
		parts = append(parts, seg.String())
		seg.Reset()
		if i < len(name) { // at a dot
			i++
			if i == len(name) {
				return nil, errors.New("empty segment in claim path " + quote(name))
			}
		}
	}
	return parts, nil
}

func quote(s string) string { return "`" + s + "`" }

// Lookup returns the value at the path name in claims: the top-level
// claim named name when there is one (so that namespaced claims such as
// "https://example.com/tenant_id" need no quotes), else the path's.
func Lookup(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.ContainsAny(name, `."`) {
		return nil, false
	}
	parts, err := Split(name)
	if err != nil {
		return nil, false
	}
	var cur any = claims
	for _, part := range parts {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}
