package testservers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisCLIHint names what to install when redis-cli is missing.
const redisCLIHint = "redis-cli not found: install Debian package redis-tools (redis-server depends on it), or run scripts/test"

var redisCLIPaths = []string{"/usr/bin/redis-cli", "/usr/local/bin/redis-cli"}

// clusterNodes is the number of masters of a RedisCluster.
const clusterNodes = 3

// clusterNodeTimeout is how long a cluster node may be unreachable before
// the others consider it failing, in milliseconds.
const clusterNodeTimeout = "2000"

// RedisClusterServers is a Redis Cluster of three masters without replicas,
// started for tests: each a redis-server without persistence on a free
// loopback port, the 16384 hash slots spread over them by redis-cli. A
// node keeps its cluster configuration (not its data) in a file of its own,
// so a node stopped and started again rejoins with its slots. The cluster
// keeps serving the slots of the nodes that answer when one is down.
type RedisClusterServers struct {
	// Nodes are the masters, each can be stopped, started and paused.
	Nodes []*RedisServer
	// Addrs are the nodes' host:port, for a cluster client's Addrs option.
	Addrs []string
}

// RedisCluster starts a Redis Cluster for the test and stops it at t's
// cleanup. It skips the test when redis-server or redis-cli is not
// installed, or fails it when TENANCY_REQUIRE_SERVERS=1.
func RedisCluster(t testing.TB) *RedisClusterServers {
	t.Helper()
	dir := t.TempDir()
	return startForTest(t, func() (*RedisClusterServers, func(), error) { return startRedisCluster(dir) })
}

// StartRedisCluster starts a Redis Cluster outside of any test, for a
// package to share one from TestMain, as StartRedis does one server. The
// caller must call stop, which is never nil. When redis-server or
// redis-cli cannot be found the error is ErrNotInstalled (errors.Is).
func StartRedisCluster() (c *RedisClusterServers, stop func(), err error) {
	if _, ok := lookPath("redis-server", redisPaths...); !ok {
		return nil, func() {}, notInstalled(redisInstallHint)
	}
	if _, ok := lookPath("redis-cli", redisCLIPaths...); !ok {
		return nil, func() {}, notInstalled(redisCLIHint)
	}
	return inTempDir("testservers-rediscluster-", startRedisCluster)
}

// startRedisCluster starts the nodes in folders of dir, creates the
// cluster and waits until every node says it is ok.
func startRedisCluster(dir string) (*RedisClusterServers, func(), error) {
	bin, ok := lookPath("redis-server", redisPaths...)
	if !ok {
		return nil, func() {}, notInstalled(redisInstallHint)
	}
	cli, ok := lookPath("redis-cli", redisCLIPaths...)
	if !ok {
		return nil, func() {}, notInstalled(redisCLIHint)
	}
	c := &RedisClusterServers{}
	stop := func() {
		for _, n := range c.Nodes {
			n.Stop()
		}
	}
	for i := range clusterNodes {
		n, err := startClusterNode(bin, filepath.Join(dir, "node-"+strconv.Itoa(i)))
		if err != nil {
			stop()
			return nil, func() {}, err
		}
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		stop()
		return nil, func() {}, fmt.Errorf("testservers: redis-cli --cluster create: %w\n--- output ---\n%s--- end of output ---", err, out)
	}
	if err := c.WaitOK(ctx); err != nil {
		stop()
		return nil, func() {}, err
	}
	return c, stop, nil
}

// startClusterNode starts one redis-server in cluster mode with dir as its
// working folder, its cluster bus on a free port of its own.
func startClusterNode(bin, dir string) (*RedisServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testservers: %w", err)
	}
	bus, err := freePort()
	if err != nil {
		return nil, err
	}
	srv := &Server{
		name: "redis-server (cluster node)",
		dir:  dir,
		argv: func(port int) []string {
			return []string{bin,
				"--port", strconv.Itoa(port),
				"--bind", "127.0.0.1",
				"--save", "",
				"--appendonly", "no",
				"--dir", dir,
				"--daemonize", "no",
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", clusterNodeTimeout,
				"--cluster-require-full-coverage", "no",
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
	if err := srv.startFirst(); err != nil {
		return nil, err
	}
	return &RedisServer{Server: srv, Addr: srv.addr()}, nil
}

// WaitOK waits until every node that runs reports cluster_state:ok and
// knows every node, as after the cluster is created or a node restarted.
func (c *RedisClusterServers) WaitOK(ctx context.Context) error {
	var last error
	for {
		last = c.ok(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testservers: redis cluster not ok: %w", last)
		case <-time.After(pollInterval):
		}
	}
}

func (c *RedisClusterServers) ok(ctx context.Context) error {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		info, err := redisCommand(ctx, n.Addr, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:" + strconv.Itoa(len(c.Nodes))} {
			if !strings.Contains(info, want) {
				return fmt.Errorf("%s: CLUSTER INFO lacks %s:\n%s", n.Addr, want, info)
			}
		}
	}
	return nil
}

// NodeFor returns the node that serves key's hash slot, as the first
// running node's CLUSTER NODES says.
func (c *RedisClusterServers) NodeFor(key string) (*RedisServer, error) {
	var ask *RedisServer
	for _, n := range c.Nodes {
		if n.Running() {
			ask = n
			break
		}
	}
	if ask == nil {
		return nil, errors.New("testservers: no node of the redis cluster runs")
	}
	reply, err := ask.Command("CLUSTER", "KEYSLOT", key)
	if err != nil {
		return nil, err
	}
	slot, err := strconv.Atoi(reply)
	if err != nil {
		return nil, fmt.Errorf("testservers: CLUSTER KEYSLOT answered %q", reply)
	}
	nodes, err := ask.Command("CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	// <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slots>...
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		for _, r := range f[8:] {
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || slot < l || slot > h {
				continue
			}
			for _, n := range c.Nodes {
				if n.Addr == addr {
					return n, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("testservers: no node of the redis cluster serves slot %d of %q", slot, key)
}
