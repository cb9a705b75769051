//go:build unix

package testservers_test

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/testservers"
)

// TestPauseResume: a paused server accepts connections and answers
// nothing; resumed, it answers what it was sent meanwhile; paused, it can
// still be stopped and started again.
func TestPauseResume(t *testing.T) {
	r := testservers.Redis(t)
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		t.Fatalf("dial a paused server: %v; want the kernel to accept the connection", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 16)
	if n, err := conn.Read(buf); !os.IsTimeout(err) {
		t.Fatalf("read from a paused server: %q, %v; want a timeout", buf[:n], err)
	}

	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "+PONG\r\n" {
		t.Fatalf("after Resume: %q, %v; want the PING sent while paused answered", buf[:n], err)
	}
	if err := r.Resume(); err != nil {
		t.Fatalf("Resume of a running server: %v", err)
	}

	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := r.Pause(); err == nil {
		t.Fatal("Pause of a stopped server succeeded")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Command("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after a paused server was stopped and started = %q, %v", got, err)
	}
}
