// Command catalog is the price list the orders example calls: a downstream
// service that answers GET /products/{item} with the unit price for the
// caller's tenant, which depends on the tenant's tier.
//
// It never mints or trusts anything of its own: every request carries the
// token the caller was authenticated with (orders forwards it with
// tenant.Transport), and the catalog verifies it against the same issuer.
// The tenant comes from that verified token only; the baggage and trace
// headers a caller sends are information for logs, never authority. See
// README.md.
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
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}
