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
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tenancykit/tenancy/examples/internal/kit"
)

// main runs the service until SIGTERM or SIGINT (kit.Main): the first
// drains it, the second spools its usage and ends it at once. SIGHUP
// reloads the limits files.
func main() {
	kit.Main("orders", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		return run(ctx, args, getenv, stdout, stderr, withReload(hup))
	})
}
