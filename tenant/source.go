package tenant

// Source says how a [Tenant] was established, so that the parts that act
// with a tenant's authority (data access, credentials, budgets, role
// checks) can refuse a tenant that only the request itself vouches for.
//
// The zero Source is [SourceAssigned]: a Tenant built with [New] or a
// literal and put in a context by the program itself.
type Source uint8

const (
	// SourceAssigned: the program established the tenant itself (a worker
	// that read it from its own queue binding, a test). Trusted as far as
	// the program is.
	SourceAssigned Source = iota
	// SourceToken: from a bearer token whose signature, issuer, audience and
	// lifetime authz verified.
	SourceToken
	// SourcePeer: from headers set by a trusted peer ([TrustedHeader]), a
	// gateway or sidecar that verified the caller.
	SourcePeer
	// SourceClaimed: named by the request itself (its host, its path, or a
	// resolver that does not say otherwise) and verified by no one. Anyone
	// can send a request that claims any tenant.
	SourceClaimed
)

// Verified reports whether s is anything but [SourceClaimed]. The module's
// parts that act with a tenant's authority (tenant.Require, authz's
// Require* checks, throttle budgets, awscreds credentials and the DynamoDB
// guard) refuse a tenant whose source is not verified unless the service
// opts in for that part.
func (s Source) Verified() bool { return s != SourceClaimed }

// String returns "assigned", "token", "peer" or "claimed".
func (s Source) String() string {
	switch s {
	case SourceAssigned:
		return "assigned"
	case SourceToken:
		return "token"
	case SourcePeer:
		return "peer"
	case SourceClaimed:
		return "claimed"
	}
	return "unknown"
}
