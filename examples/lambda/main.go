// Command lambda is a multi-tenant notes service run as an AWS Lambda
// function behind API Gateway, a REST API or an HTTP API: the tenancy
// stack around a plain http.ServeMux, served by tenancylambda. Each tenant
// reads and writes only its own notes, kept in memory for the life of the
// function's environment:
//
//	POST /notes        a note of the body (any content type), tagged with each X-Note-Tag header
//	GET  /notes        the tenant's notes
//	GET  /notes/{id}   a note's content, with one X-Note-Tag header per tag
//
// It is configured by environment variables:
//
//	TRUST_AUTHORIZER  1: the tenant comes from the claims API Gateway's JWT or
//	                  Cognito authorizer verified (or a Lambda authorizer's
//	                  context), with Cognito's claim names; only for a
//	                  function that API Gateway alone may invoke, with the
//	                  authorizer on every route. Default 0: the bearer token
//	                  is verified in the function.
//	ISSUER            without TRUST_AUTHORIZER: the exact "iss" of accepted tokens
//	AUDIENCE          without TRUST_AUTHORIZER: the audience (app client ID) tokens name
//	JWKS_URL          the issuer's JWK Set: the only fetch at cold start
//	                  (default: OIDC discovery from ISSUER first, one more round trip)
//	METER_FILE        usage records appended to this file as JSON lines
//	                  (default: JSON lines on stdout, with the logs)
//
// Logs are JSON lines on stdout, which CloudWatch Logs collects, each with
// the tenant, API Gateway's request ID and the X-Ray trace ID. The usage of
// every invocation is delivered before it returns.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// shutdownTimeout bounds delivering what is pending when the environment
// shuts down: Lambda gives its runtime about half a second after SIGTERM.
const shutdownTimeout = 300 * time.Millisecond

func main() {
	svc, err := newService(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notes:", err)
		os.Exit(1)
	}
	slog.SetDefault(svc.logger)
	// SIGTERM reaches the function only when an extension is registered.
	lambda.StartWithOptions(svc.handler, lambda.WithEnableSIGTERM(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			svc.logger.Error("notes: shutdown", "error", err.Error())
		}
	}))
}
