//go:build !linux

package meter_test

import "testing"

func mountTmpfs(t *testing.T, size int) string {
	t.Skip("a full disk needs a tmpfs, mounted on Linux only")
	return ""
}
