package authz

import (
	"strings"
	"testing"
	"unicode"
)

// unicodeControl is isControl as the Unicode tables say it, for every
// character.
func unicodeControl(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// TestIsControlOfASCII: the ASCII shortcut of isControl and hasControl
// agrees with the Unicode tables for every ASCII character, alone and
// among other characters, ASCII or not.
func TestIsControlOfASCII(t *testing.T) {
	for r := rune(0); r < 0x80; r++ {
		if got, want := isControl(r), unicodeControl(r); got != want {
			t.Errorf("isControl(%U) = %v, want %v", r, got, want)
		}
		for _, s := range []string{string(r), "orders:" + string(r), string(r) + "é", "é" + string(r), "\u200b" + string(r), "a\u2028" + string(r)} {
			if got, want := hasControl(s), strings.ContainsFunc(s, unicodeControl); got != want {
				t.Errorf("hasControl(%q) = %v, want %v", s, got, want)
			}
		}
	}
	for _, r := range []rune{0x80, 0x85, 0x9f, 0xa0, 0xad, 0x200b, 0x202e, 0x2028, 0x2029, 'é', '界'} {
		if got, want := isControl(r), unicodeControl(r); got != want {
			t.Errorf("isControl(%U) = %v, want %v", r, got, want)
		}
	}
}
