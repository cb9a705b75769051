package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"

	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/throttle"
)

const usage = `orders: a multi-tenant orders service (see examples/orders/README.md)

It takes no arguments; it is configured by environment variables:

  ADDR                   listen address (default 127.0.0.1:8080; port 0 picks one)
  AUTH_ISSUER            the exact "iss" of accepted tokens; unset = development mode
  AUTH_AUDIENCE          the audience tokens must name (required with AUTH_ISSUER)
  AUTH_JWKS_URL          the JWK Set URL (default: OIDC discovery from AUTH_ISSUER)
  AUTH_TENANT_CLAIM      default custom:tenantId
  AUTH_TIER_CLAIM        default custom:tenantTier
  AUTH_ROLES_CLAIM       default cognito:groups
  TIERS_FILE             JSON file of limits per tier (default: basic 5/s burst 10,
                         standard 50/100, premium 500/1000, platinum 2000/4000)
  TENANT_OVERRIDES_FILE  JSON file of limits per tenant ID, beating its tier's
                         (both files are read again on SIGHUP; a file with a
                         mistake is logged and the limits in force stay)
  REDIS_URL              redis://[user:password@]host:port/db: limits shared by
                         every replica, and the events unless ORDER_EVENTS says
                         otherwise (default: each process keeps its own)
  THROTTLE_REPLICAS      with REDIS_URL: how many replicas share the limits, for
                         each one's share while Redis is away (default: the
                         replicas count themselves in Redis)
  DYNAMODB_ENDPOINT      DynamoDB API URL, such as dynalite's http://127.0.0.1:4567;
                         creates ORDERS_TABLE if missing (default: AWS's endpoint)
  ORDERS_TABLE           the pooled DynamoDB table, partition key tenant_id, sort
                         key order_id (default: orders with DYNAMODB_ENDPOINT,
                         else unset = orders kept in memory)
  AWS_TENANT_ROLE_ARN    role assumed per tenant, tagged TenantId=<tenant>, for
                         DynamoDB (default: the service's own credentials)
  CATALOG_URL            catalog service pricing items: GET {CATALOG_URL}/products/{item}
                         with the caller's token (default: orders are not priced)
  METER_FILE             usage records appended as JSON lines, with a spool
                         (METER_FILE.spool) and a checkpoint (.spool.checkpoint)
                         beside it: a kill -9 loses at most the usage of the
                         last second, delivered by the next start
                         (default: CloudWatch EMF lines on stdout)
  METER_STATE_DIR        with METER_FILE: the directory of its spool and checkpoint
                         (usage.spool, usage.spool.checkpoint), on a volume that
                         outlives the process (default: beside METER_FILE)
  ORDER_EVENTS           where each order.created event goes, stamped for fulfillment:
                         redis (the stream on REDIS_URL), kinesis (a Kinesis stream)
                         or memory (a queue in memory); a contradicting setting
                         is refused (default: kinesis with KINESIS_ENDPOINT, else
                         redis with REDIS_URL, else memory)
  KINESIS_ENDPOINT       Kinesis API URL, such as kinesalite's http://127.0.0.1:4568,
                         for the events only; creates ORDER_EVENTS_STREAM if
                         missing (default: AWS's endpoint with ORDER_EVENTS=kinesis)
  ORDER_EVENTS_STREAM    the Redis or Kinesis stream of the events, or the name of
                         their queue in memory (default order-events)
  STAMP_ISSUER           the service's URL, named in its stamps (default
                         https://orders.example)
  STAMP_KEY_FILE         PEM file of the private key signing the stamps: EC P-256,
                         RSA 2048+ or Ed25519 (default: a P-256 key generated at
                         start); the public keys are served at /.well-known/jwks.json
  STAMP_KEY_ID           with STAMP_KEY_FILE: its key ID (default: from the public key)
  STAMP_MAX_AGE          how long a stamp is valid, 1m to 168h (default 24h)
  LOG_LEVEL              debug, info, warn or error (default info)
  DEV_ISSUER_ADDR        development mode only: the issuer's address (default 127.0.0.1:0)
  DEV_TOKEN_LIFETIME     development mode only: validity of printed tokens (default 24h)
`

// runOption is a hook for tests; the service itself runs without any.
type runOption func(*runHooks)

type runHooks struct {
	ready        func(addr string)               // the listener is bound to addr
	wrap         func(http.Handler) http.Handler // wraps the whole service
	shuttingDown func()                          // Shutdown has closed the listener
	sts          stscreds.AssumeRoleAPIClient    // replaces STS for AWS_TENANT_ROLE_ARN
	stdout       []logging.AsyncOption           // options of the log streams
	reload       <-chan os.Signal                // each value reloads the limits files
	eventRetry   <-chan struct{}                 // each value publishes the events' outbox again
}

// withReady calls f with the bound address once the service accepts
// connections.
func withReady(f func(addr string)) runOption { return func(h *runHooks) { h.ready = f } }

// withHandlerWrap wraps the service's handler, outside of everything else.
func withHandlerWrap(f func(http.Handler) http.Handler) runOption {
	return func(h *runHooks) { h.wrap = f }
}

// withShuttingDown calls f once graceful shutdown has stopped accepting
// connections and waits for in-flight requests.
func withShuttingDown(f func()) runOption { return func(h *runHooks) { h.shuttingDown = f } }

// withSTS makes AWS_TENANT_ROLE_ARN assume the role through c instead of
// the STS client of the AWS configuration.
func withSTS(c stscreds.AssumeRoleAPIClient) runOption { return func(h *runHooks) { h.sts = c } }

// withStdoutOptions sets options of both log streams on stdout, such as
// a smaller buffer.
func withStdoutOptions(opts ...logging.AsyncOption) runOption {
	return func(h *runHooks) { h.stdout = opts }
}

// withReload reloads TIERS_FILE and TENANT_OVERRIDES_FILE at each value
// of signals: main passes SIGHUP.
func withReload(signals <-chan os.Signal) runOption { return func(h *runHooks) { h.reload = signals } }

// withEventRetry publishes the events kept in the outbox at each value
// of retry, besides every eventRetryInterval.
func withEventRetry(retry <-chan struct{}) runOption {
	return func(h *runHooks) { h.eventRetry = retry }
}

// newRunHooks applies opts; nil ones are ignored.
func newRunHooks(opts []runOption) runHooks {
	var h runHooks
	for _, o := range opts {
		if o != nil {
			o(&h)
		}
	}
	return h
}

// run builds the service from the environment, serves until ctx is done,
// then drains in-flight requests, delivers the usage they recorded and
// returns nil. Human-facing text (the listen address, the development
// banner) goes to stderr; stdout carries only JSON lines: logs, and the
// usage records in CloudWatch EMF unless METER_FILE is set.
//
// The parts are built in the order they depend on each other, and closed
// in reverse: stdout first, so that every part can log; the limiter before
// anything that contacts another server, so that a mistake in its files is
// reported at once; the meter before the handler that records into it;
// and, once the server has drained, the usage delivered, then the log
// lines written out.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, opts ...runOption) error {
	hooks := newRunHooks(opts)
	if done, err := kit.Args("orders", args, stdout, usage); done {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}

	// Logs, audit events and EMF lines share stdout, a whole line at a
	// time; logs never make a request wait for it.
	out, err := kit.NewStdout(stdout, hooks.stdout...)
	if err != nil {
		return err
	}
	defer out.Close() // on the early ways out; the normal one reports
	log, auditor := newLogging(ctx, out, cfg.logLevel)
	prevLog := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(prevLog)

	limiter, rdb, err := newLimiter(cfg, log)
	if err != nil {
		return err
	}
	if rdb != nil {
		defer rdb.Close() // after the server has drained
	}
	if hooks.reload != nil {
		r := &limitsReloader{tiersFile: cfg.tiersFile, overridesFile: cfg.overridesFile, limiter: limiter, log: log, overrides: cfg.overrides}
		defer r.serveReloads(ctx, hooks.reload)()
	}

	recorder, err := newRecorder(ctx, cfg, out, log)
	if err != nil {
		return err
	}
	defer recorder.shutdownOnError(log)

	id, err := newIdentity(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer id.close()

	signer, generated, err := newStampSigner(cfg)
	if err != nil {
		return err
	}
	events, err := newOrderEvents(ctx, cfg, getenv, rdb, signer, log, hooks.eventRetry)
	if err != nil {
		return err
	}
	defer events.close(ctx) // on the early ways out; the normal one reports

	s := stack{verifier: id.verifier, limiter: limiter, recorder: recorder.rec, log: log, auditor: auditor, events: events}
	closeStore, err := openStore(ctx, cfg, getenv, hooks.sts, &s)
	if err != nil {
		return err
	}
	defer closeStore()

	srv, err := newServer(s, hooks)
	if err != nil {
		return err
	}
	ln, err := kit.Listen(cfg.addr)
	if err != nil {
		return err
	}
	info := newStackInfo(cfg, recorder.sink, s.creds != nil)
	info.events, info.stampKeyGenerated = events.transport, generated
	if err := announce(stderr, log, ln.Addr().String(), id, limiter, info); err != nil {
		ln.Close()
		return err
	}
	if err := kit.Serve(ctx, srv, ln, log, "orders", hooks.ready); err != nil {
		return err
	}
	return shutDown(ctx, events, recorder, out, log)
}

// shutDown, once the server has drained, publishes the order events still
// in the outbox and delivers the usage the requests recorded, then writes
// out the log lines still buffered, the meter's own among them.
func shutDown(ctx context.Context, events *orderEvents, recorder *usageRecorder, out *kit.Stdout, log *slog.Logger) error {
	evErr := events.close(ctx)
	log.Info("orders service drained: delivering usage records", "timeout", meterShutdownTimeout.String())
	if err := recorder.shutdown(); err != nil {
		return errors.Join(evErr, fmt.Errorf("usage records: %w", err))
	}
	if evErr != nil {
		out.Close()
		return evErr
	}
	log.Info("orders service stopped")
	if err := out.Close(); err != nil {
		return fmt.Errorf("log lines: %w", err)
	}
	return nil
}

// identity is whom the service trusts: the issuer of the tokens it
// accepts and their audience, and the verifier of those tokens. In
// development mode it runs that issuer itself.
type identity struct {
	issuer, audience string
	mode             string            // "production" or "development"
	dev              *authztest.Issuer // nil in production
	verifier         *authz.Verifier
}

// newIdentity starts the development issuer in development mode, and
// builds the verifier.
func newIdentity(ctx context.Context, cfg config, log *slog.Logger) (*identity, error) {
	id := &identity{issuer: cfg.issuer, audience: cfg.audience, mode: "production"}
	if cfg.devMode() {
		dev, err := authztest.NewIssuer(
			authztest.WithAudience(devAudience),
			authztest.WithClaimMapping(cfg.mapping),
			authztest.WithAddr(cfg.dev.issuerAddr),
			authztest.WithLifetime(cfg.dev.tokenLifetime),
		)
		if err != nil {
			return nil, fmt.Errorf("development issuer (DEV_ISSUER_ADDR %s): %w", cfg.dev.issuerAddr, err)
		}
		id.dev, id.issuer, id.audience, id.mode = dev, dev.URL(), dev.Audience(), "development"
	}
	// The development issuer is verified exactly like a real one: OIDC
	// discovery, JWKS over HTTP, audience and claim mapping.
	auth := kit.Auth{Issuer: id.issuer, JWKSURL: cfg.jwksURL, Audience: id.audience, Mapping: cfg.mapping}
	v, err := auth.NewVerifier(ctx, log)
	if err != nil {
		id.close()
		if id.dev != nil {
			return nil, fmt.Errorf("token verifier for the development issuer: %w", err)
		}
		return nil, fmt.Errorf("token verifier for AUTH_ISSUER %s: %w", id.issuer, err)
	}
	id.verifier = v
	return id, nil
}

// close stops the verifier's refreshes and the development issuer.
func (id *identity) close() {
	if id.verifier != nil {
		id.verifier.Close()
	}
	if id.dev != nil {
		id.dev.Close()
	}
}

// openStore sets s's order store: DynamoDB, with tenant credentials when
// AWS_TENANT_ROLE_ARN is set, or memory; and the catalog client with
// CATALOG_URL. sts, when not nil, replaces the STS client (tests). close
// releases their connections.
func openStore(ctx context.Context, cfg config, getenv func(string) string, sts stscreds.AssumeRoleAPIClient, s *stack) (close func(), _ error) {
	var closers []func()
	if cfg.dynamo() {
		d, err := openDynamo(ctx, cfg, getenv, s.auditor, sts)
		if err != nil {
			return nil, err
		}
		closers = append(closers, d.close)
		s.store, s.creds = d.store, d.creds
	} else {
		s.store = newMemoryStore()
	}
	if cfg.catalogURL != "" {
		s.catalog = newCatalog(cfg.catalogURL)
		closers = append(closers, s.catalog.close)
	}
	return func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}, nil
}

// newServer returns the server of the service built from s, with the
// test hooks.
func newServer(s stack, hooks runHooks) (*http.Server, error) {
	handler, err := newHandler(s)
	if err != nil {
		return nil, err
	}
	if hooks.wrap != nil {
		handler = hooks.wrap(handler)
	}
	srv := kit.NewServer(handler, s.log.Handler())
	if hooks.shuttingDown != nil {
		srv.RegisterOnShutdown(hooks.shuttingDown)
	}
	return srv, nil
}

// announce says that the service listens on addr: the development
// banner, or the address, on stderr, and the start line, with what the
// service runs on, in the log.
func announce(stderr io.Writer, log *slog.Logger, addr string, id *identity, limiter *throttle.Limiter, info stackInfo) error {
	var err error
	if id.dev != nil {
		err = printDevBanner(stderr, addr, id.dev, info.cfg.dev, limiter, info)
	} else {
		_, err = fmt.Fprintf(stderr, "listening on http://%s\n", addr)
	}
	if err != nil {
		return err
	}
	cfg := info.cfg
	attrs := []any{"addr", addr, "mode", id.mode, "issuer", id.issuer, "limits_store", info.limits,
		"store", info.store, "meter_sink", info.meters, "log_level", cfg.logLevel.String()}
	if cfg.dynamo() {
		attrs = append(attrs, "orders_table", cfg.ordersTable, "tenant_credentials", info.tenantCreds)
	}
	if cfg.catalogURL != "" {
		attrs = append(attrs, "catalog", cfg.catalogURL)
	}
	attrs = append(attrs, "events", info.events, "events_stream", cfg.eventsStream, "stamp_issuer", cfg.stampIssuer)
	if cfg.kinesisEndpoint != "" {
		attrs = append(attrs, "kinesis_endpoint", cfg.kinesisEndpoint)
	}
	log.Info("orders service started", attrs...)
	return nil
}
