// Command orders is a multi-tenant orders service built on tenancy's public
// API: authz verifies the bearer token and puts the tenant in the request
// context, and a store partitioned by tenant reads it from there, so no
// handler can reach another tenant's orders.
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
