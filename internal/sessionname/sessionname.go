// Package sessionname is how an STS role session is named for a tenant:
// awscreds names the sessions it assumes this way, and message.SenderSession
// recognises a message sent from such a session by the same name.
package sessionname

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// DefaultPrefix starts every session name unless configured otherwise
// (awscreds.DefaultSessionPrefix).
const DefaultPrefix = "tenant-"

// MaxLen is STS's limit on a role session name.
const MaxLen = 64

// Rune reports whether STS allows r in a role session name.
func Rune(r rune) bool {
	return r < utf8.RuneSelf && (r == '_' || r == '+' || r == '=' || r == ',' || r == '.' || r == '@' || r == '-' ||
		'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
}

// For returns the session name of tenant id: prefix + the ID in STS's
// character set and length. An ID that had to be changed or cut gets a
// hash of the original, so two tenants never share a session name;
// CloudTrail still shows which tenant it is for.
func For(prefix, id string) string {
	clean := strings.Map(func(r rune) rune {
		if Rune(r) {
			return r
		}
		return '-'
	}, id)
	name := prefix + clean
	if clean == id && len(name) <= MaxLen && len(name) >= 2 {
		return name
	}
	sum := sha256.Sum256([]byte(id))
	suffix := "-" + hex.EncodeToString(sum[:4])
	if keep := MaxLen - len(suffix); len(name) > keep {
		name = name[:keep]
	}
	return name + suffix
}
