// Command orders is the full-stack reference service of tenancy: a
// multi-tenant orders API built only on the library's public API. authz
// verifies the bearer token and puts the tenant in the request context;
// throttle spends the tenant's budget; logging writes JSON lines on stdout
// with the tenant, request and trace on every one; meter records each
// tenant's usage; and the store, in memory or in a pooled DynamoDB table
// guarded by awscreds, reads the tenant from the context, so no handler can
// reach another tenant's orders. With CATALOG_URL, new orders are priced by
// a second service called through tenant.Transport.
//
// Run it with no configuration and it starts its own development issuer and
// prints tokens and curl commands; set AUTH_ISSUER and AUTH_AUDIENCE to
// verify tokens from a real identity provider. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, the next one ends the process at once
	// instead of waiting for the graceful shutdown.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}
