// Package awscreds gives each request AWS credentials scoped to its tenant,
// and guards a DynamoDB client so that no request can touch another
// tenant's items, even when a handler forgets to check.
//
// # Scoped credentials
//
// A pooled table holds every tenant's items under a partition key that is
// the tenant ID. The service assumes a tenant role once per tenant, tagging
// the session with TenantId=<id>; the role's permission policy allows item
// actions only where dynamodb:LeadingKeys equals ${aws:PrincipalTag/TenantId}.
// The credentials a tenant gets can read and write its own items and
// nothing else: isolation enforced by IAM, not by handler code.
//
//	stsClient := sts.NewFromConfig(baseCfg)
//	creds, err := awscreds.New(stsClient, "arn:aws:iam::123456789012:role/orders-tenant")
//	...
//	ddb := dynamodb.NewFromConfig(creds.Config(baseCfg), guard.Options())
//	handler = awscreds.Middleware(creds, nil)(handler) // 503 for a tenant STS fails
//	// in a handler, the request's context selects the tenant's credentials:
//	out, err := ddb.GetItem(r.Context(), &dynamodb.GetItemInput{...})
//
// [Provider] calls STS once per tenant and caches the result per tenant in
// an aws.CredentialsCache (early refresh with jitter, one refresh at a time),
// for at most [DefaultMaxTenants] tenants. A cached request costs a map
// lookup and an expiry check. The role session name carries the tenant, in
// STS's character set, so CloudTrail tells tenants apart. Where ABAC is not
// available, [WithSessionPolicy] with [SessionPolicy] writes the tenant into
// an inline session policy instead.
//
// # The IAM documents
//
// iam/permission-policy.json is the tenant role's permission policy
// ([PermissionPolicy] generates it for any table, tag key and key prefix):
// item actions on the table and its indexes under the LeadingKeys
// condition, and an explicit deny of Scan and PartiQL, which read across
// partitions. iam/trust-policy.json is its trust policy ([TrustPolicy]):
// the service's own role may call sts:AssumeRole and sts:TagSession, and
// only with the tenant tag present. Replace the example ARNs with yours.
//
// # The DynamoDB guard
//
// [Guard] is client-side defence in depth, and the only protection where
// the table cannot use ABAC (one role for all tenants, local development):
// a middleware on the DynamoDB client that refuses, before anything is
// sent, any request whose partition key is not the context's tenant, and
// every Scan unless allowed. Refusals are typed ([GuardError]) and reported
// to a hook, for an audit event.
package awscreds
