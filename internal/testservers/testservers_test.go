package testservers_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tenancykit/tenancy/internal/testservers"
)

// shared is a redis-server for the whole package, started as the package
// documentation shows.
var (
	shared    *testservers.RedisServer
	sharedErr error
)

func TestMain(m *testing.M) {
	var stop func()
	shared, stop, sharedErr = testservers.StartRedis()
	goleak.VerifyTestMain(testservers.AfterRun(m, stop))
}

func TestShared(t *testing.T) {
	testservers.Check(t, sharedErr)
	if got, err := shared.Command("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", got, err)
	}
}

func TestRedis(t *testing.T) {
	r := testservers.Redis(t)

	if got, err := r.Command("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", got, err)
	}
	if got, err := r.Command("SET", "greeting", "hello world"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v; want OK", got, err)
	}
	if got, err := r.Command("GET", "greeting"); err != nil || got != "hello world" {
		t.Fatalf("GET = %q, %v; want %q", got, err, "hello world")
	}
	if got, err := r.Command("GET", "missing"); !errors.Is(err, testservers.ErrNil) {
		t.Fatalf("GET missing = %q, %v; want ErrNil", got, err)
	}
	if got, err := r.Command("INCR", "n"); err != nil || got != "1" {
		t.Fatalf("INCR = %q, %v; want 1", got, err)
	}
	if _, err := r.Command("NOSUCHCOMMAND"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("NOSUCHCOMMAND error = %v; want unknown command", err)
	}
	if got, err := r.Command("INFO", "commandstats"); err != nil || !strings.Contains(got, "cmdstat_set:calls=1") {
		t.Fatalf("INFO commandstats = %q, %v; want cmdstat_set:calls=1", got, err)
	}
	if got, err := r.Command("CONFIG", "GET", "bind"); err != nil || got != "bind\n127.0.0.1" {
		t.Fatalf("CONFIG GET bind = %q, %v", got, err)
	}

	addr := r.Addr
	r.Stop()
	if r.Running() {
		t.Fatal("Running after Stop")
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s accepts connections after Stop", addr)
	}
	if _, err := r.Command("PING"); err == nil {
		t.Fatal("PING after Stop succeeded")
	}

	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if r.Addr != addr {
		t.Fatalf("Addr after Start = %s; want %s", r.Addr, addr)
	}
	if got, err := r.Command("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Start = %q, %v", got, err)
	}
	if _, err := r.Command("GET", "greeting"); !errors.Is(err, testservers.ErrNil) {
		t.Fatalf("GET after Start = %v; want ErrNil (no persistence)", err)
	}

	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Command("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Restart = %q, %v", got, err)
	}
	if !strings.Contains(r.Output(), "Ready to accept connections") {
		t.Errorf("Output lacks the start message:\n%s", r.Output())
	}
}

// TestRedisTwice checks that two servers run side by side on their own ports.
func TestRedisTwice(t *testing.T) {
	a, b := testservers.Redis(t), testservers.Redis(t)
	if a.Addr == b.Addr {
		t.Fatalf("both servers on %s", a.Addr)
	}
	if _, err := a.Command("SET", "k", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Command("GET", "k"); !errors.Is(err, testservers.ErrNil) {
		t.Fatalf("GET on the other server = %v; want ErrNil", err)
	}
}

func TestStartRedis(t *testing.T) {
	r, stop, err := testservers.StartRedis()
	testservers.Check(t, err)
	defer stop()
	if got, err := r.Command("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	stop()
	if r.Running() {
		t.Fatal("Running after stop")
	}
}

func TestDynalite(t *testing.T) {
	d := testservers.Dynalite(t)
	if !strings.HasPrefix(d.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q", d.Endpoint)
	}

	var created struct {
		TableDescription struct {
			TableName   string
			TableStatus string
		}
	}
	err := d.Call("CreateTable", map[string]any{
		"TableName":            "tenants",
		"AttributeDefinitions": []map[string]string{{"AttributeName": "id", "AttributeType": "S"}},
		"KeySchema":            []map[string]string{{"AttributeName": "id", "KeyType": "HASH"}},
		"BillingMode":          "PAY_PER_REQUEST",
	}, &created)
	if err != nil {
		t.Fatal(err)
	}
	if created.TableDescription.TableName != "tenants" {
		t.Fatalf("CreateTable answered %+v", created)
	}

	var list struct{ TableNames []string }
	if err := d.Call("ListTables", nil, &list); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(list.TableNames, []string{"tenants"}) {
		t.Fatalf("ListTables = %v; want [tenants]", list.TableNames)
	}

	// With the default options tables become ACTIVE at once.
	var desc struct{ Table struct{ TableStatus string } }
	if err := d.Call("DescribeTable", map[string]string{"TableName": "tenants"}, &desc); err != nil {
		t.Fatal(err)
	}
	if desc.Table.TableStatus != "ACTIVE" {
		t.Errorf("TableStatus = %q; want ACTIVE", desc.Table.TableStatus)
	}

	err = d.Call("DescribeTable", map[string]string{"TableName": "nope"}, nil)
	var apiErr *testservers.APIError
	if !errors.As(err, &apiErr) || !strings.HasSuffix(apiErr.Type, "ResourceNotFoundException") {
		t.Fatalf("DescribeTable of a missing table: %v; want ResourceNotFoundException", err)
	}

	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	list.TableNames = nil
	if err := d.Call("ListTables", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.TableNames) != 0 {
		t.Fatalf("ListTables after Restart = %v; want none (in memory)", list.TableNames)
	}
}

func TestKinesalite(t *testing.T) {
	k := testservers.Kinesalite(t)
	if !strings.HasPrefix(k.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q", k.Endpoint)
	}

	if err := k.Call("CreateStream", map[string]any{"StreamName": "events", "ShardCount": 2}, nil); err != nil {
		t.Fatal(err)
	}

	var list struct{ StreamNames []string }
	if err := k.Call("ListStreams", nil, &list); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(list.StreamNames, []string{"events"}) {
		t.Fatalf("ListStreams = %v; want [events]", list.StreamNames)
	}

	// With the default options streams become ACTIVE at once.
	var desc struct {
		StreamDescription struct {
			StreamName   string
			StreamStatus string
			Shards       []struct{ ShardId string }
		}
	}
	if err := k.Call("DescribeStream", map[string]string{"StreamName": "events"}, &desc); err != nil {
		t.Fatal(err)
	}
	sd := desc.StreamDescription
	if sd.StreamName != "events" || sd.StreamStatus != "ACTIVE" || len(sd.Shards) != 2 {
		t.Fatalf("DescribeStream = %+v; want events, ACTIVE, 2 shards", sd)
	}

	var put struct{ ShardId, SequenceNumber string }
	err := k.Call("PutRecord", map[string]any{
		"StreamName":   "events",
		"PartitionKey": "tenant-1",
		"Data":         []byte("hello"), // encoded as base64, as the API wants
	}, &put)
	if err != nil {
		t.Fatal(err)
	}
	if put.SequenceNumber == "" {
		t.Fatalf("PutRecord answered %+v", put)
	}
}

// TestFauxqs: fauxqs answers the SQS JSON protocol on the port it was
// given (in its environment, not an option), keeps what it is sent, and
// comes back empty on the same port after a Restart.
func TestFauxqs(t *testing.T) {
	f := testservers.Fauxqs(t)
	if !strings.HasPrefix(f.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q", f.Endpoint)
	}
	var created struct{ QueueUrl string }
	if err := f.Call("CreateQueue", map[string]string{"QueueName": "orders"}, &created); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("http://sqs.%s.localhost:%d/000000000000/orders", testservers.Region, f.Port()); created.QueueUrl != want {
		t.Fatalf("CreateQueue answered the URL %q; want %q", created.QueueUrl, want)
	}
	if err := f.Call("SendMessage", map[string]string{"QueueUrl": created.QueueUrl, "MessageBody": "hello"}, nil); err != nil {
		t.Fatal(err)
	}
	var got struct{ Messages []struct{ Body string } }
	if err := f.Call("ReceiveMessage", map[string]string{"QueueUrl": created.QueueUrl}, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 1 || got.Messages[0].Body != "hello" {
		t.Fatalf("ReceiveMessage = %+v; want the message sent", got)
	}
	var apiErr *testservers.APIError
	err := f.Call("ReceiveMessage", map[string]string{"QueueUrl": strings.TrimSuffix(created.QueueUrl, "orders") + "nope"}, nil)
	if !errors.As(err, &apiErr) || !strings.Contains(apiErr.Type, "QueueDoesNotExist") {
		t.Fatalf("ReceiveMessage of a missing queue: %v; want an APIError QueueDoesNotExist", err)
	}

	port := f.Port()
	if err := f.Restart(); err != nil {
		t.Fatal(err)
	}
	if f.Port() != port {
		t.Fatalf("port after Restart = %d; want %d", f.Port(), port)
	}
	var list struct{ QueueUrls []string }
	if err := f.Call("ListQueues", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.QueueUrls) != 0 {
		t.Fatalf("ListQueues after Restart = %v; want none (in memory)", list.QueueUrls)
	}
}

// TestOptionOverride checks that an option given to Dynalite replaces the
// package's default rather than being given twice.
func TestOptionOverride(t *testing.T) {
	d := testservers.Dynalite(t, "--createTableMs", "60000")
	err := d.Call("CreateTable", map[string]any{
		"TableName":            "slow",
		"AttributeDefinitions": []map[string]string{{"AttributeName": "id", "AttributeType": "S"}},
		"KeySchema":            []map[string]string{{"AttributeName": "id", "KeyType": "HASH"}},
		"BillingMode":          "PAY_PER_REQUEST",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var desc struct{ Table struct{ TableStatus string } }
	if err := d.Call("DescribeTable", map[string]string{"TableName": "slow"}, &desc); err != nil {
		t.Fatal(err)
	}
	if desc.Table.TableStatus != "CREATING" {
		t.Errorf("TableStatus right after CreateTable = %q; want CREATING", desc.Table.TableStatus)
	}
}

func TestRequired(t *testing.T) {
	t.Setenv(testservers.RequireEnv, "1")
	if !testservers.Required() {
		t.Error("Required() = false with the variable set to 1")
	}
	t.Setenv(testservers.RequireEnv, "")
	if testservers.Required() {
		t.Error("Required() = true with the variable empty")
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := testservers.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "internal/testservers/doc.go"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("RepoRoot = %q, not the module root: %v", root, err)
		}
	}
}

// TestMissing checks that a server that cannot be found skips the test,
// naming what to install.
func TestMissing(t *testing.T) {
	t.Chdir(t.TempDir()) // no go.mod above, so no .servers
	t.Setenv("PATH", t.TempDir())
	t.Setenv(testservers.KinesaliteEnv, "")
	t.Setenv(testservers.RequireEnv, "")

	_, stop, err := testservers.StartKinesalite()
	stop()
	if !errors.Is(err, testservers.ErrNotInstalled) || !strings.Contains(err.Error(), "scripts/test") {
		t.Fatalf("StartKinesalite error = %v; want ErrNotInstalled naming scripts/test", err)
	}

	t.Setenv(testservers.FauxqsEnv, "")
	_, stop, err = testservers.StartFauxqs()
	stop()
	if !errors.Is(err, testservers.ErrNotInstalled) || !strings.Contains(err.Error(), testservers.FauxqsEnv+" to its dist/cli.js") {
		t.Fatalf("StartFauxqs error = %v; want ErrNotInstalled naming %s and the package's dist/cli.js", err, testservers.FauxqsEnv)
	}

	var skipped bool
	t.Run("skip", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		testservers.Kinesalite(t)
		t.Error("Kinesalite returned with kinesalite missing")
	})
	if !skipped {
		t.Error("the test was not skipped")
	}
}

func TestMissingScript(t *testing.T) {
	t.Setenv(testservers.DynaliteEnv, filepath.Join(t.TempDir(), "nope.js"))
	_, stop, err := testservers.StartDynalite()
	stop()
	if err == nil || errors.Is(err, testservers.ErrNotInstalled) {
		t.Fatalf("StartDynalite with a wrong %s: %v; want an error that is not ErrNotInstalled", testservers.DynaliteEnv, err)
	}
}
