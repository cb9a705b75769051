package testservers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Environment variables that point to a server's cli script (run with node
// when it ends in .js, run as it is otherwise), ahead of the copy that
// scripts/test installs.
const (
	DynaliteEnv   = "TENANCY_DYNALITE"
	KinesaliteEnv = "TENANCY_KINESALITE"
	FauxqsEnv     = "TENANCY_FAUXQS"
)

// serversDir is the git-ignored folder at the repository root into which
// scripts/test installs the npm packages.
const serversDir = ".servers"

// Fake credentials for the emulators, which check that a request is signed
// but not the signature. Clients configured for them need some credentials.
const (
	// AccessKeyID is an access key ID the emulators accept.
	AccessKeyID = "testservers"
	// SecretAccessKey is a secret key the emulators accept.
	SecretAccessKey = "testservers"
	// Region is a region name the emulators accept.
	Region = "us-east-1"
)

// AWSConfig is the SDK configuration of a client of the emulators: their
// region and credentials, and an HTTP client with a timeout whose idle
// connections are closed when t ends (before the servers stop). A caller
// sets the endpoint on its client, and may set RetryMaxAttempts.
func AWSConfig(t testing.TB) aws.Config {
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: transport, Timeout: 30 * time.Second},
	}
}

// DynaliteServer is a dynalite (a DynamoDB emulator) started for tests, in
// memory, listening on 127.0.0.1 only. Tables change state (CREATING to
// ACTIVE, and so on) at once. A Restart starts it empty.
type DynaliteServer struct {
	*Server
	// Endpoint is the server's base URL, "http://127.0.0.1:PORT", for a
	// DynamoDB client's endpoint option.
	Endpoint string
}

// KinesaliteServer is a kinesalite (a Kinesis emulator) started for tests, in
// memory. Streams change state (CREATING to ACTIVE, and so on) at once. A
// Restart starts it empty. Kinesalite has no option for the address it
// listens on: it listens on all of the machine's addresses, and Endpoint
// names the loopback one.
type KinesaliteServer struct {
	*Server
	// Endpoint is the server's base URL, "http://127.0.0.1:PORT", for a
	// Kinesis client's endpoint option.
	Endpoint string
}

// Dynalite starts a dynalite for the test and stops it at t's cleanup. args
// are added to its command line (see node_modules/dynalite/cli.js --help); an
// option given there replaces the default this package sets. It skips the
// test when node or dynalite is not installed, or fails it when
// TENANCY_REQUIRE_SERVERS=1.
func Dynalite(t testing.TB, args ...string) *DynaliteServer {
	t.Helper()
	return startForTest(t, func() (*DynaliteServer, func(), error) { return StartDynalite(args...) })
}

// StartDynalite starts a dynalite outside of any test, for a package to share
// one from TestMain; see StartRedis for stop and the error.
func StartDynalite(args ...string) (d *DynaliteServer, stop func(), err error) {
	s, err := startNode(nodeServer{
		name:     "dynalite",
		env:      DynaliteEnv,
		defaults: []string{"--host", "127.0.0.1", "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"},
		api:      dynamoAPI,
	}, args)
	if err != nil {
		return nil, func() {}, err
	}
	return &DynaliteServer{Server: s, Endpoint: endpoint(s)}, s.Stop, nil
}

// Call sends a DynamoDB operation (such as "CreateTable") with in encoded as
// JSON for its body ({} when in is nil), and decodes the answer into out
// unless out is nil. An answer other than 200 is returned as an *APIError.
func (d *DynaliteServer) Call(operation string, in, out any) error {
	return awsAPI{spec: dynamoAPI, endpoint: d.Endpoint}.Call(operation, in, out)
}

// Kinesalite starts a kinesalite for the test and stops it at t's cleanup.
// args are added to its command line (see node_modules/kinesalite/cli.js
// --help); an option given there replaces the default this package sets. It
// skips the test when node or kinesalite is not installed, or fails it when
// TENANCY_REQUIRE_SERVERS=1.
func Kinesalite(t testing.TB, args ...string) *KinesaliteServer {
	t.Helper()
	return startForTest(t, func() (*KinesaliteServer, func(), error) { return StartKinesalite(args...) })
}

// StartKinesalite starts a kinesalite outside of any test, for a package to
// share one from TestMain; see StartRedis for stop and the error.
func StartKinesalite(args ...string) (k *KinesaliteServer, stop func(), err error) {
	s, err := startNode(nodeServer{
		name:     "kinesalite",
		env:      KinesaliteEnv,
		defaults: []string{"--createStreamMs", "0", "--deleteStreamMs", "0", "--updateStreamMs", "0"},
		api:      kinesisAPI,
	}, args)
	if err != nil {
		return nil, func() {}, err
	}
	return &KinesaliteServer{Server: s, Endpoint: endpoint(s)}, s.Stop, nil
}

// Call sends a Kinesis operation (such as "CreateStream") with in encoded as
// JSON for its body ({} when in is nil), and decodes the answer into out
// unless out is nil. An answer other than 200 is returned as an *APIError.
func (k *KinesaliteServer) Call(operation string, in, out any) error {
	return awsAPI{spec: kinesisAPI, endpoint: k.Endpoint}.Call(operation, in, out)
}

// FauxqsServer is a fauxqs (an SQS, SNS and S3 emulator) started for tests,
// in memory, that answers the SQS JSON protocol of the AWS SDKs. Its queue
// URLs are "http://sqs.us-east-1.localhost:PORT/000000000000/NAME": an
// SDK client sends its requests to Endpoint, the URL in their body, and
// the queue's name is the URL's last segment. Visibility timeouts and
// delays run on its own, real, clock. It does not enforce SQS's limit of
// ten message attributes. A Restart starts it empty: queues must be
// created again. Fauxqs has no option for the address it listens on: it
// listens on all of the machine's addresses, and Endpoint names the
// loopback one.
type FauxqsServer struct {
	*Server
	// Endpoint is the server's base URL, "http://127.0.0.1:PORT", for an
	// SQS client's endpoint option.
	Endpoint string
}

// Fauxqs starts a fauxqs for the test and stops it at t's cleanup. It skips
// the test when node or fauxqs is not installed, or fails it when
// TENANCY_REQUIRE_SERVERS=1.
func Fauxqs(t testing.TB) *FauxqsServer {
	t.Helper()
	return startForTest(t, StartFauxqs)
}

// StartFauxqs starts a fauxqs outside of any test, for a package to share
// one from TestMain; see StartRedis for stop and the error.
func StartFauxqs() (f *FauxqsServer, stop func(), err error) {
	s, err := startNode(nodeServer{
		name:    "fauxqs",
		script:  filepath.Join("dist", "cli.js"),
		env:     FauxqsEnv,
		portEnv: "FAUXQS_PORT",
		api:     sqsAPI,
	}, nil)
	if err != nil {
		return nil, func() {}, err
	}
	return &FauxqsServer{Server: s, Endpoint: endpoint(s)}, s.Stop, nil
}

// Call sends an SQS operation (such as "CreateQueue") in the SQS JSON
// protocol with in encoded as JSON for its body ({} when in is nil), and
// decodes the answer into out unless out is nil. An answer other than 200
// is returned as an *APIError.
func (f *FauxqsServer) Call(operation string, in, out any) error {
	return awsAPI{spec: sqsAPI, endpoint: f.Endpoint}.Call(operation, in, out)
}

func endpoint(s *Server) string {
	return "http://" + s.addr()
}

// nodeServer describes an npm package's server.
type nodeServer struct {
	name     string   // npm package name, also its bin name
	script   string   // its cli script in the package; "" for cli.js
	env      string   // variable naming its cli script
	portEnv  string   // variable the port is given in; "" for a --port option
	defaults []string // options set unless args set them
	api      apiSpec  // for the readiness probe
}

// startNode finds and starts an npm package's server.
func startNode(ns nodeServer, args []string) (*Server, error) {
	script := ns.script
	if script == "" {
		script = "cli.js"
	}
	cmdline, err := findNodeServer(ns.name, script, ns.env)
	if err != nil {
		return nil, err
	}
	extra := withDefaults(ns.defaults, args)
	s := &Server{
		name: ns.name,
		argv: func(port int) []string {
			argv := append([]string(nil), cmdline...)
			if ns.portEnv == "" {
				argv = append(argv, "--port", strconv.Itoa(port))
			}
			return append(argv, extra...)
		},
		probe: func(ctx context.Context, addr string) error {
			api := awsAPI{spec: ns.api, endpoint: "http://" + addr}
			return api.call(ctx, ns.api.probe, nil, nil)
		},
	}
	if ns.portEnv != "" {
		s.env = func(port int) []string { return []string{ns.portEnv + "=" + strconv.Itoa(port)} }
	}
	if err := s.startFirst(); err != nil {
		return nil, err
	}
	return s, nil
}

// withDefaults returns args after those defaults (option, value pairs) whose
// option args does not give.
func withDefaults(defaults, args []string) []string {
	var out []string
	for i := 0; i+1 < len(defaults); i += 2 {
		opt, given := defaults[i], false
		for _, a := range args {
			if a == opt || strings.HasPrefix(a, opt+"=") {
				given = true
				break
			}
		}
		if !given {
			out = append(out, opt, defaults[i+1])
		}
	}
	return append(out, args...)
}

// findNodeServer returns the command line (less the options) that starts the
// npm package name: the script in the env variable, else the package's
// script under .servers/node_modules at the repository root, else name on
// PATH.
func findNodeServer(name, script, env string) ([]string, error) {
	hint := fmt.Sprintf("%s not found: run scripts/test (it installs %s into %s/node_modules with npm), or set %s to its %s",
		name, name, serversDir, env, filepath.ToSlash(script))
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("testservers: %s=%s: %w", env, p, err)
		}
		if !strings.HasSuffix(p, ".js") {
			return []string{p}, nil
		}
		return nodeCommand(p, hint)
	}
	if p, ok := inServersDir(name, script); ok {
		return nodeCommand(p, hint)
	}
	if bin, ok := lookPath(name); ok {
		return []string{bin}, nil
	}
	return nil, notInstalled(hint)
}

// nodeCommand returns node and script.
func nodeCommand(script, hint string) ([]string, error) {
	node, ok := lookPath("node", "/usr/bin/node", "/usr/local/bin/node")
	if !ok {
		return nil, notInstalled("node not found (Node.js 20 or later is needed); " + hint)
	}
	return []string{node, script}, nil
}

// inServersDir returns the path rel under the node_modules of the nearest
// serversDir above the working directory that holds it: the repository's,
// for the tests of the core module and of the nested modules alike.
func inServersDir(rel ...string) (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		p := filepath.Join(append([]string{dir, serversDir, "node_modules"}, rel...)...)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// RepoRoot returns the folder holding go.mod, found by walking up from the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testservers: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testservers: no go.mod above the working directory")
		}
		dir = parent
	}
}

// apiSpec describes an AWS JSON protocol.
type apiSpec struct {
	targetPrefix string // X-Amz-Target is targetPrefix + "." + operation
	contentType  string
	service      string // for the credential scope
	probe        string // an operation that answers on an empty server
}

var (
	dynamoAPI  = apiSpec{"DynamoDB_20120810", "application/x-amz-json-1.0", "dynamodb", "ListTables"}
	kinesisAPI = apiSpec{"Kinesis_20131202", "application/x-amz-json-1.1", "kinesis", "ListStreams"}
	sqsAPI     = apiSpec{"AmazonSQS", "application/x-amz-json-1.0", "sqs", "ListQueues"}
)

// httpClient keeps no idle connections, so that no transport goroutine
// outlives a call (the packages' tests check for leaked goroutines).
var httpClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   commandTimeout,
}

// APIError is an error answer of an emulator.
type APIError struct {
	Status  int    // HTTP status
	Type    string // __type, such as "ResourceNotFoundException"
	Message string
	Body    string // the whole answer
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Type, e.Message)
}

// awsAPI calls an emulator's JSON API, with fake credentials.
type awsAPI struct {
	spec     apiSpec
	endpoint string
}

func (a awsAPI) Call(operation string, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return a.call(ctx, operation, in, out)
}

func (a awsAPI) call(ctx context.Context, operation string, in, out any) error {
	body := []byte("{}")
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("testservers: %s: %w", operation, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	date := now.Format("20060102T150405Z")
	req.Header.Set("Content-Type", a.spec.contentType)
	req.Header.Set("X-Amz-Target", a.spec.targetPrefix+"."+operation)
	req.Header.Set("X-Amz-Date", date)
	req.Header.Set("Authorization", fmt.Sprintf(
		"AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s",
		AccessKeyID, date[:8], Region, a.spec.service, strings.Repeat("0", 64)))
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Status: resp.StatusCode, Body: string(data)}
		var m struct {
			Type     string `json:"__type"`
			Message  string `json:"message"`
			MessageU string `json:"Message"`
		}
		if json.Unmarshal(data, &m) == nil {
			e.Type = m.Type
			e.Message = m.Message + m.MessageU
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("testservers: %s answer %q: %w", operation, data, err)
	}
	return nil
}
