package testservers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/testservers"
)

// TestRedisCluster: three masters share the slots; a key is served by its
// slot's node and moved elsewhere; a node stopped leaves the others
// serving, and started again it rejoins with its slots.
func TestRedisCluster(t *testing.T) {
	c := testservers.RedisCluster(t)
	if len(c.Nodes) != 3 || len(c.Addrs) != 3 {
		t.Fatalf("%d nodes, %d addresses; want 3", len(c.Nodes), len(c.Addrs))
	}
	owners := map[string]bool{}
	for _, key := range []string{"a", "b", "c", "d", "e", "f", "{tag}x", "{tag}y"} {
		n, err := c.NodeFor(key)
		if err != nil {
			t.Fatal(err)
		}
		owners[n.Addr] = true
		if got, err := n.Command("SET", key, "v"); err != nil || got != "OK" {
			t.Fatalf("SET %s on its node %s = %q, %v", key, n.Addr, got, err)
		}
		for _, other := range c.Nodes {
			if other == n {
				continue
			}
			var re testservers.RedisError
			if _, err := other.Command("GET", key); !errors.As(err, &re) || !strings.HasPrefix(string(re), "MOVED") {
				t.Fatalf("GET %s on %s, not its node: %v; want MOVED", key, other.Addr, err)
			}
		}
	}
	if len(owners) != 3 {
		t.Errorf("8 keys on %d nodes; want the slots spread over all 3", len(owners))
	}

	down, err := c.NodeFor("a")
	if err != nil {
		t.Fatal(err)
	}
	down.Stop()
	for _, key := range []string{"b", "c", "d", "e", "f"} {
		n, err := c.NodeFor(key)
		if err != nil {
			t.Fatal(err)
		}
		if n == down {
			continue
		}
		if got, err := n.Command("GET", key); err != nil || got != "v" {
			t.Fatalf("GET %s with another node down = %q, %v", key, got, err)
		}
	}
	if err := down.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.WaitOK(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := c.NodeFor("a"); err != nil || n != down {
		t.Fatalf("after the restart, a is served by %v (%v); want the node restarted, which keeps its slots", n, err)
	}
	if _, err := down.Command("GET", "a"); !errors.Is(err, testservers.ErrNil) {
		t.Fatalf("GET a on the restarted node: %v; want nil (no persistence)", err)
	}
}

func TestStartRedisCluster(t *testing.T) {
	c, stop, err := testservers.StartRedisCluster()
	testservers.Check(t, err)
	defer stop()
	if got, err := c.Nodes[1].Command("CLUSTER", "INFO"); err != nil || !strings.Contains(got, "cluster_state:ok") {
		t.Fatalf("CLUSTER INFO = %q, %v", got, err)
	}
	stop()
	for _, n := range c.Nodes {
		if n.Running() {
			t.Fatalf("node %s runs after stop", n.Addr)
		}
	}
}
