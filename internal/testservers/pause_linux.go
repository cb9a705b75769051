//go:build linux

package testservers

import (
	"bytes"
	"os"
	"strconv"
)

// stopped reports whether the process is stopped by a signal, from the
// state in /proc/PID/stat (the field after the command's parenthesis).
func stopped(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	return stat[i+2] == 'T'
}
