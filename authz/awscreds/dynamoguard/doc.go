// Package dynamoguard guards a DynamoDB client so that no request can
// touch another tenant's items, even when a handler forgets to check.
//
// A [Guard] is client-side defence in depth for a pooled table, whose
// partition key is the tenant ID, and the only protection where the table
// cannot use ABAC (one role for all tenants, local development): a
// middleware on the DynamoDB client that refuses, before anything is
// signed or sent, any request whose partition key is not the context's
// tenant ([tenant.FromContext]), and every Scan unless allowed. It knows
// only the tables it is told about ([WithTable], with each table's
// partition key attribute, or [WithUnguardedTable]) and the operations it
// can read; a request on any other table, and an operation it does not
// know, is refused. Refusals are typed ([Error]) and reported to a hook
// ([WithOnRefuse]), for an audit event.
//
//	guard, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"))
//	if err != nil {
//		log.Fatal(err)
//	}
//	ddb := dynamodb.NewFromConfig(cfg, guard.Options())
//	// in a handler, the request's context names the tenant:
//	out, err := ddb.GetItem(r.Context(), &dynamodb.GetItemInput{...})
//	if errors.Is(err, dynamoguard.ErrCrossTenant) { ... }
//
// The boundary itself is IAM: tenant-scoped credentials whose policy
// limits dynamodb:LeadingKeys, from package
// [github.com/tenancykit/tenancy/authz/awscreds]. Use both: the guard
// refuses a bug's request before it leaves the process, with an error
// that says why; IAM refuses whatever goes around the guard.
//
// # Claimed tenants
//
// A tenant that the request named for itself — its Host subdomain or its
// path, [tenant.SourceClaimed] — is verified by no one: anyone can send a
// request that claims any tenant. The guard treats such a tenant as no
// tenant at all, and refuses the request with an [Error] wrapping
// [tenant.ErrNoTenant], unless [WithClaimedTenants] opts in.
package dynamoguard
