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
	"io"

	"github.com/tenancykit/tenancy/examples/internal/kit"
)

func main() {
	kit.Main("catalog", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return run(ctx, args, getenv, stdout, stderr)
	})
}
