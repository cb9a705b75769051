package testservers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisInstallHint names what to install when redis-server is missing.
const redisInstallHint = "redis-server not found: install Debian package redis-server, or run scripts/test"

// redisPaths are looked at when redis-server is not on PATH (Debian puts it in
// /usr/bin; PATH may lack the sbin folders).
var redisPaths = []string{"/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server", "/usr/local/sbin/redis-server"}

// commandTimeout bounds one Command: dialling, writing and reading.
const commandTimeout = 10 * time.Second

// RedisServer is a redis-server started for tests, without persistence,
// listening on 127.0.0.1 only.
type RedisServer struct {
	*Server
	// Addr is host:port of the server, for a client's address option.
	Addr string
}

// ErrNil is returned by Command for a nil reply (GET of a missing key).
var ErrNil = errors.New("testservers: redis nil reply")

// RedisError is an error reply of redis, such as "ERR unknown command".
type RedisError string

func (e RedisError) Error() string { return "redis: " + string(e) }

// Redis starts a redis-server for the test and stops it at t's cleanup. It
// skips the test when redis-server is not installed, or fails it when
// TENANCY_REQUIRE_SERVERS=1.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	dir := t.TempDir()
	return startForTest(t, func() (*RedisServer, func(), error) { return startRedis(dir) })
}

// StartRedis starts a redis-server outside of any test, for a package to
// share one from TestMain. The caller must call stop, which kills the server
// and ends the goroutines that watch it; stop is never nil. When
// redis-server cannot be found the error is ErrNotInstalled (errors.Is); pass
// it to Check in each test.
func StartRedis() (r *RedisServer, stop func(), err error) {
	if _, ok := lookPath("redis-server", redisPaths...); !ok {
		return nil, func() {}, notInstalled(redisInstallHint)
	}
	return inTempDir("testservers-redis-", startRedis)
}

// inTempDir runs start in a new temporary folder, and returns what it
// started with a stop that also removes the folder; stop is never nil.
func inTempDir[T any](prefix string, start func(dir string) (T, func(), error)) (T, func(), error) {
	var zero T
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return zero, func() {}, fmt.Errorf("testservers: %w", err)
	}
	v, stopStarted, err := start(dir)
	stop := func() {
		stopStarted()
		_ = os.RemoveAll(dir)
	}
	if err != nil {
		stop()
		return zero, func() {}, err
	}
	return v, stop, nil
}

// startRedis starts redis-server with dir as its working folder.
func startRedis(dir string) (*RedisServer, func(), error) {
	bin, ok := lookPath("redis-server", redisPaths...)
	if !ok {
		return nil, func() {}, notInstalled(redisInstallHint)
	}
	s := &Server{
		name: "redis-server",
		dir:  dir,
		argv: func(port int) []string {
			return []string{bin,
				"--port", strconv.Itoa(port),
				"--bind", "127.0.0.1",
				"--save", "",
				"--appendonly", "no",
				"--dir", dir,
				"--daemonize", "no",
			}
		},
		probe: func(ctx context.Context, addr string) error {
			reply, err := redisCommand(ctx, addr, "PING")
			if err == nil && reply != "PONG" {
				err = fmt.Errorf("PING answered %q", reply)
			}
			return err
		},
	}
	if err := s.startFirst(); err != nil {
		return nil, func() {}, err
	}
	return &RedisServer{Server: s, Addr: s.addr()}, s.Stop, nil
}

// Command sends one command on a new connection and returns the reply as
// text: a status or bulk string as it is, an integer in decimal, an array as
// its elements one a line (a nil element as "(nil)"). An error reply is
// returned as a RedisError, a nil reply as ErrNil. For example
// Command("INFO", "commandstats") returns the INFO text.
func (r *RedisServer) Command(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return redisCommand(ctx, r.Addr, args...)
}

// redisCommand dials addr, sends args as a RESP array and reads one reply.
func redisCommand(ctx context.Context, addr string, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("testservers: empty redis command")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	// Cancelling ctx ends a read or write under way.
	defer context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

// readReply reads one RESP2 reply.
func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("testservers: empty redis reply line")
	}
	kind, rest := line[0], line[1:]
	switch kind {
	case '+', ':':
		return rest, nil
	case '-':
		return "", RedisError(rest)
	case '$':
		n, err := strconv.Atoi(rest)
		if err != nil {
			return "", fmt.Errorf("testservers: bad bulk length %q", rest)
		}
		if n < 0 {
			return "", ErrNil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(rest)
		if err != nil {
			return "", fmt.Errorf("testservers: bad array length %q", rest)
		}
		if n < 0 {
			return "", ErrNil
		}
		elems := make([]string, 0, n)
		for range n {
			e, err := readReply(br)
			switch {
			case errors.Is(err, ErrNil):
				e = "(nil)"
			case err != nil:
				var re RedisError
				if !errors.As(err, &re) {
					return "", err
				}
				e = "(error) " + string(re)
			}
			elems = append(elems, e)
		}
		return strings.Join(elems, "\n"), nil
	default:
		return "", fmt.Errorf("testservers: unknown redis reply %q", line)
	}
}
