// Package testservers starts real servers for tests: redis-server, the
// DynamoDB, Kinesis and SQS emulators dynalite, kinesalite and fauxqs, and
// the OpenID provider oidc-provider (npm packages run with node).
//
// Each server is a child process on a free loopback port, started with no
// persistence into a clean state, and ready when the Start function returns:
// the helper has polled it until it answered (PING for redis, ListTables,
// ListStreams or ListQueues for the emulators, the discovery document for
// the OpenID provider). What the server printed is kept and shown when it does not
// come up.
//
// # Per test
//
// Redis, Dynalite, Kinesalite, Fauxqs and OIDC start a server for one test
// and stop it at the test's cleanup, which also runs when the test fails or panics:
//
//	r := testservers.Redis(t)
//	client := redis.NewClient(&redis.Options{Addr: r.Addr})
//
//	d := testservers.Dynalite(t)
//	// d.Endpoint is "http://127.0.0.1:PORT"; use testservers.AccessKeyID,
//	// SecretAccessKey and Region for the client's credentials.
//
//	f := testservers.Fauxqs(t)
//	// the same for an SQS client; f.Call("CreateQueue", ...) answers the
//	// queue's URL.
//
// A server can be stopped in the middle of a test, to see how the code under
// test copes with losing it, and started again on the same port, where
// clients that reconnect find it:
//
//	r.Stop()
//	// ... the code under test sees connection errors ...
//	if err := r.Start(); err != nil { // or r.Restart()
//		t.Fatal(err)
//	}
//
// Redis also answers raw commands, to look at the server's side of a test:
//
//	info, err := r.Command("INFO", "commandstats")
//
// A server can also hang without going away: Pause stops its processes
// with SIGSTOP (connections are accepted, nothing answers) until Resume.
//
// RedisCluster starts a Redis Cluster of three masters (redis-server in
// cluster mode, the slots spread by redis-cli --cluster create) and waits
// until every node reports cluster_state:ok. Each node is a RedisServer
// that can be stopped, started (it rejoins with its slots, empty) and
// paused; NodeFor names the node that serves a key:
//
//	c := testservers.RedisCluster(t)
//	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
//
// OIDC starts an OpenID provider whose clients get JWT access tokens with
// the client_credentials grant; each client's claims (a tenant, a tier,
// roles) are added to its tokens. Its signing keys survive a restart;
// RotateKeys makes it sign with new ones:
//
//	o := testservers.OIDC(t, testservers.WithOIDCClient("acme-svc", "secret",
//		map[string]any{"tenant_id": "acme", "tier": "premium"}))
//	v, err := authz.NewVerifier(ctx, o.Issuer(), authz.WithAudience(o.Audience()), ...)
//	tenant, err := v.Verify(ctx, o.Token(t, "acme-svc"))
//
// # One server for a package
//
// StartRedis, StartRedisCluster, StartDynalite, StartKinesalite,
// StartFauxqs and StartOIDC start a server without a test, for TestMain, and return a stop function that must
// be called (it is never nil). Keep the error for the tests to Check, so
// that a missing server skips them (or fails them, see below) instead of
// the whole package:
//
//	var (
//		redisServer *testservers.RedisServer
//		redisErr    error
//	)
//
//	func TestMain(m *testing.M) {
//		var stop func()
//		redisServer, stop, redisErr = testservers.StartRedis()
//		goleak.VerifyTestMain(testservers.AfterRun(m, stop))
//	}
//
//	func TestSomething(t *testing.T) {
//		testservers.Check(t, redisErr)
//		// use redisServer.Addr
//	}
//
// AfterRun stops the servers after the tests and before goleak looks for
// goroutines left behind; the helpers leave none once stopped. Tests that
// share a server must not Stop it, and should use keys or tables of their own.
//
// # Missing servers
//
// A test whose server is not installed is skipped with a message naming what
// to install, unless TENANCY_REQUIRE_SERVERS=1 is set, as scripts/test (and
// so CI) does: then it fails. scripts/test installs what is missing:
// redis-server from Debian's packages, dynalite, kinesalite, fauxqs and
// oidc-provider with npm into the git-ignored folder .servers/node_modules
// at the repository root.
//
// Where the programs are looked for:
//
//   - redis-server: PATH, then /usr/bin, /usr/sbin, /usr/local/bin and
//     /usr/local/sbin; redis-cli (for a cluster): PATH, then /usr/bin and
//     /usr/local/bin.
//   - dynalite (kinesalite): the script named by TENANCY_DYNALITE
//     (TENANCY_KINESALITE), run with node when it ends in .js; else
//     .servers/node_modules/dynalite/cli.js in the nearest folder above the
//     working directory that has one (the repository root, for the core
//     module and the nested modules alike), run with node; else a dynalite
//     (kinesalite) program on PATH.
//   - fauxqs: the same, with TENANCY_FAUXQS and the package's dist/cli.js.
//     It takes its port in the environment (FAUXQS_PORT), and logs each
//     request. fauxqs 1.9.2 runs on Node.js 20; its 2.x releases need
//     Node.js 22.
//   - oidc-provider: the package folder named by TENANCY_OIDC_PROVIDER,
//     else .servers/node_modules/oidc-provider under the folder holding
//     go.mod; it is imported by a script of this package run with node.
//     oidc-provider 9 warns that it supports Node.js 22 or later, and runs
//     on Node.js 20.
//
// # Processes
//
// A server runs in a process group of its own and is killed with SIGKILL,
// group and all, when stopped. On Linux the kernel also kills it should the
// test binary die without running its cleanups (a -timeout panic, a signal).
package testservers
