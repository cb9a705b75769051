package testservers

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestPortInUse checks that a start on a taken port is reported as such, so
// that the first start tries another port.
func TestPortInUse(t *testing.T) {
	r := Redis(t) // skips when redis-server is missing
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	s := &Server{name: r.name, dir: r.dir, argv: r.argv, probe: r.probe, port: taken}
	err = s.Start()
	defer s.Stop()
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("Start on taken port %d: %v; want errPortInUse", taken, err)
	}
	if !strings.Contains(err.Error(), "output") || !strings.Contains(err.Error(), strconv.Itoa(taken)) {
		t.Errorf("error lacks the server's output or port: %v", err)
	}
	if s.Running() {
		t.Error("Running after a failed Start")
	}
}

// TestExitBeforeReady checks that a server that exits at once fails the start
// quickly, with its output in the error.
func TestExitBeforeReady(t *testing.T) {
	r := Redis(t)
	argv := r.argv
	s := &Server{name: r.name, dir: r.dir, probe: r.probe,
		argv: func(port int) []string { return append(argv(port), "--no-such-option", "x") }}
	err := s.startFirst()
	defer s.Stop()
	if err == nil || errors.Is(err, errPortInUse) || !strings.Contains(err.Error(), "exited before it answered") ||
		!strings.Contains(err.Error(), "no-such-option") {
		t.Fatalf("start with a bad option: %v", err)
	}
}

func TestWithDefaults(t *testing.T) {
	defaults := []string{"--a", "1", "--b", "2"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--a 1 --b 2"},
		{[]string{"--b", "3"}, "--a 1 --b 3"},
		{[]string{"--a=5", "--c"}, "--b 2 --a=5 --c"},
	} {
		if got := strings.Join(withDefaults(defaults, tc.args), " "); got != tc.want {
			t.Errorf("withDefaults(%q) = %q; want %q", tc.args, got, tc.want)
		}
	}
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"+OK\r\n", "OK", nil},
		{":42\r\n", "42", nil},
		{"$5\r\nhe\r\no\r\n", "he\r\no", nil},
		{"$-1\r\n", "", ErrNil},
		{"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n", "a\n(nil)\n7", nil},
		{"-ERR bad\r\n", "", RedisError("ERR bad")},
	} {
		got, err := readReply(bufioReader(tc.in))
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("readReply(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
