// Package awscreds gives each request AWS credentials scoped to its
// tenant, so that IAM, not handler code, keeps one tenant out of
// another's items. Package
// [github.com/tenancykit/tenancy/authz/awscreds/dynamoguard] guards a
// DynamoDB client too, inside the process.
//
// # Scoped credentials
//
// A pooled table holds every tenant's items under a partition key that is
// the tenant ID. The service assumes a tenant role per tenant, tagging the
// session with TenantId=<id>; the role's permission policy allows item
// actions only where dynamodb:LeadingKeys equals ${aws:PrincipalTag/TenantId}.
// The credentials a tenant gets can read and write its own items and
// nothing else: isolation enforced by IAM, not by handler code.
//
//	stsClient := sts.NewFromConfig(baseCfg)
//	creds, err := awscreds.New(stsClient, "arn:aws:iam::123456789012:role/orders-tenant")
//	...
//	guard, err := dynamoguard.New(dynamoguard.WithTable("orders", "tenant_id"))
//	...
//	ddb := dynamodb.NewFromConfig(creds.Config(baseCfg), guard.Options())
//	handler = awscreds.Middleware(creds, awscreds.WithOnError(logErr))(handler) // 401 without a tenant, 503 when STS fails
//	// in a handler, the request's context selects the tenant's credentials:
//	out, err := ddb.GetItem(r.Context(), &dynamodb.GetItemInput{...})
//
// [Provider] calls STS once per session and caches the result in an
// aws.CredentialsCache (early refresh with jitter, one refresh at a time),
// for at most [DefaultMaxSessions] sessions. A session is keyed by all that
// goes into it: the tenant ID, the tier where [WithTierTag] or
// [WithSessionPolicy] puts it in the session, and the tags of
// [WithExtraTags], so a user never runs with tags computed for another user
// or for the tenant's old tier. A cached request costs a map lookup and an
// expiry check. The role session name carries the tenant, in STS's
// character set, so CloudTrail tells tenants apart. Where ABAC is not
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
// Package dynamoguard's Guard is client-side defence in depth, and the
// only protection where the table cannot use ABAC (one role for all
// tenants, local development): a middleware on the DynamoDB client that
// refuses, before anything is sent, any request whose partition key is not
// the context's tenant. It has options of its own.
//
// # Claimed tenants
//
// A tenant that the request named for itself — its Host subdomain or its
// path, [tenant.SourceClaimed] — is verified by no one: anyone can send a
// request that claims any tenant. The Provider (and so [Middleware]) and
// the guard treat such a tenant as no tenant at all, and refuse it with an
// error wrapping [tenant.ErrNoTenant], the module's one error for a
// missing tenant, unless the service opts in on each: [WithClaimedTenants]
// here, dynamoguard.WithClaimedTenants for the guard.
package awscreds
