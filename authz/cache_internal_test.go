package authz

import (
	"strings"
	"testing"
)

// TestSignature: signature finds what follows the last dot, as
// strings.LastIndexByte would, for any number of dots.
func TestSignature(t *testing.T) {
	for _, token := range []string{"", ".", "..", "a", "a.b", "a.b.c", "a.b.c.d", "hdr.payload.", ".sig", "a..b", strings.Repeat("x", 300) + "." + strings.Repeat("y", 500) + "." + strings.Repeat("z", 342)} {
		if got, want := signature(token), token[strings.LastIndexByte(token, '.')+1:]; got != want {
			t.Errorf("signature(%q) = %q, want %q", token, got, want)
		}
	}
}
