package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/logging"
)

// Shutdown limits; the server's are examples/internal/kit's.
const (
	// meterShutdownTimeout bounds the delivery of usage records at
	// shutdown; what is not delivered by then goes to the spool file.
	meterShutdownTimeout = 5 * time.Second
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
  REDIS_URL              redis://[user:password@]host:port/db: limits shared by
                         every replica (default: each process keeps its own)
  DYNAMODB_ENDPOINT      DynamoDB API URL, such as dynalite's http://127.0.0.1:4567;
                         creates ORDERS_TABLE if missing (default: AWS's endpoint)
  ORDERS_TABLE           the pooled DynamoDB table, partition key tenant_id, sort
                         key order_id (default: orders with DYNAMODB_ENDPOINT,
                         else unset = orders kept in memory)
  AWS_TENANT_ROLE_ARN    role assumed per tenant, tagged TenantId=<tenant>, for
                         DynamoDB (default: the service's own credentials)
  CATALOG_URL            catalog service pricing items: GET {CATALOG_URL}/products/{item}
                         with the caller's token (default: orders are not priced)
  METER_FILE             usage records appended as JSON lines, spool beside it
                         (default: CloudWatch EMF lines on stdout)
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

// run builds the service from the environment, serves until ctx is done,
// then drains in-flight requests, delivers the usage they recorded and
// returns nil. Human-facing text (the listen address, the development
// banner) goes to stderr; stdout carries only JSON lines: logs, and the
// usage records in CloudWatch EMF unless METER_FILE is set.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, opts ...runOption) error {
	var hooks runHooks
	for _, o := range opts {
		if o != nil {
			o(&hooks)
		}
	}
	if done, err := kit.Args("orders", args, stdout, usage); done {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}

	// Logs and EMF lines share stdout, a whole line at a time.
	out := newLineOutput(stdout)
	log := newLogger(out, cfg.logLevel)
	// On ECS or Fargate every line also names the cluster, task and
	// container; elsewhere this adds nothing.
	if ecs := logging.ECSMetadata(ctx, logging.WithECSWarnings(log)); len(ecs) > 0 {
		log = newLogger(out, cfg.logLevel, ecs...)
	}
	// Audit events (authz refusals, DynamoDB guard refusals) go to the
	// same stream, told apart by log_type "audit", whatever LOG_LEVEL.
	auditor := logging.NewAuditor(log.Handler())
	prevLog := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(prevLog)

	// The limiter is built before anything that contacts another server, so
	// that a mistake in its files is reported at once.
	limiter, rdb, err := newLimiter(cfg, log)
	if err != nil {
		return err
	}
	limitsStore := "memory"
	if rdb != nil {
		defer rdb.Close() // after the server has drained
		limitsStore = "redis"
	}

	rec, closeSink, meterSink, err := newRecorder(cfg, out, log)
	if err != nil {
		return err
	}
	// Delivers what was recorded, on every way out: after the server has
	// drained on the normal one.
	recDone := false
	shutdownMeters := func() error {
		recDone = true
		mctx, cancel := context.WithTimeout(context.Background(), meterShutdownTimeout)
		defer cancel()
		err := rec.Shutdown(mctx)
		if cerr := closeSink(); err == nil && cerr != nil {
			err = fmt.Errorf("METER_FILE %s: %w", cfg.meterFile, cerr)
		}
		return err
	}
	defer func() {
		if !recDone {
			if merr := shutdownMeters(); merr != nil {
				log.Error("usage records lost", "error", merr)
			}
		}
	}()

	issuer, audience, mode := cfg.issuer, cfg.audience, "production"
	var dev *authztest.Issuer
	if cfg.devMode() {
		dev, err = authztest.NewIssuer(
			authztest.WithAudience(devAudience),
			authztest.WithClaimMapping(cfg.mapping),
			authztest.WithAddr(cfg.dev.issuerAddr),
			authztest.WithLifetime(cfg.dev.tokenLifetime),
		)
		if err != nil {
			return fmt.Errorf("development issuer (DEV_ISSUER_ADDR %s): %w", cfg.dev.issuerAddr, err)
		}
		defer dev.Close()
		issuer, audience, mode = dev.URL(), dev.Audience(), "development"
	}

	// The development issuer is verified exactly like a real one: OIDC
	// discovery, JWKS over HTTP, audience and claim mapping.
	auth := kit.Auth{Issuer: issuer, JWKSURL: cfg.jwksURL, Audience: audience, Mapping: cfg.mapping}
	v, err := auth.NewVerifier(ctx, log)
	if err != nil {
		if dev != nil {
			return fmt.Errorf("token verifier for the development issuer: %w", err)
		}
		return fmt.Errorf("token verifier for AUTH_ISSUER %s: %w", issuer, err)
	}
	defer v.Close()

	s := stack{verifier: v, limiter: limiter, recorder: rec, log: log, auditor: auditor}
	storeKind := "memory"
	if cfg.dynamo() {
		d, err := openDynamo(ctx, cfg, getenv, auditor, hooks.sts)
		if err != nil {
			return err
		}
		defer d.close()
		s.store, s.creds, storeKind = d.store, d.creds, "dynamodb"
	} else {
		s.store = newMemoryStore()
	}
	if cfg.catalogURL != "" {
		s.catalog = newCatalog(cfg.catalogURL)
		defer s.catalog.close()
	}

	handler, err := newHandler(s)
	if err != nil {
		return err
	}
	if hooks.wrap != nil {
		handler = hooks.wrap(handler)
	}
	srv := kit.NewServer(handler, log.Handler())
	if hooks.shuttingDown != nil {
		srv.RegisterOnShutdown(hooks.shuttingDown)
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on ADDR %s: %w", cfg.addr, err)
	}
	addr := ln.Addr().String()
	st := stackInfo{cfg: cfg, limits: limitsStore, meters: meterSink, store: storeKind}
	if dev != nil {
		err = printDevBanner(stderr, addr, dev, cfg.dev, limiter, st)
	} else {
		_, err = fmt.Fprintf(stderr, "listening on http://%s\n", addr)
	}
	if err != nil {
		ln.Close()
		return err
	}
	attrs := []any{"addr", addr, "mode", mode, "issuer", issuer, "limits_store", limitsStore,
		"store", storeKind, "meter_sink", meterSink, "log_level", cfg.logLevel.String()}
	if cfg.dynamo() {
		attrs = append(attrs, "orders_table", cfg.ordersTable, "tenant_credentials", s.creds != nil)
	}
	if cfg.catalogURL != "" {
		attrs = append(attrs, "catalog", cfg.catalogURL)
	}
	log.Info("orders service started", attrs...)

	if err := kit.Serve(ctx, srv, ln, log, "orders", hooks.ready); err != nil {
		return err
	}
	// Only now: the requests that were in flight have recorded their usage.
	if err := shutdownMeters(); err != nil {
		return fmt.Errorf("usage records: %w", err)
	}
	log.Info("orders service stopped")
	return nil
}
