package message

import (
	"context"
	"fmt"
	"strings"

	"github.com/tenancykit/tenancy/internal/refusals"
	"github.com/tenancykit/tenancy/internal/sessionname"
	"github.com/tenancykit/tenancy/tenant"
)

// SenderSession returns the trust mode of the AWS sender identity: the
// message was sent by a session of the tenant role whose unique ID is
// roleID ("AROA…", from aws iam get-role), named for the tenant as
// awscreds names the sessions it assumes for a tenant (prefix + tenant
// ID, see [WithSessionPrefix]). SQS gives the sender as the SenderId
// attribute, "AROA…:session-name", which the transport puts in
// Message.SenderID.
//
// The tenant is the one an outer trust mode established (SenderSession
// inside stamp.Trusted requires both a stamp and the matching sender), else
// the one the attribute tenantAttribute names (with its tier under
// [WithTierAttribute], else the lowest), established then by the sender's
// identity (tenant.SourcePeer). Give an empty tenantAttribute to require
// an outer trust mode.
//
// It proves that the message was sent with the tenant's credentials, and
// so only as much as the tenant role's trust policy allows: only the
// services that may assume the role for a tenant may send as it. It
// proves nothing when the message passed through SNS or EventBridge,
// whose identity SQS then reports.
//
// A message without a sender is refused with the reason "sender_missing",
// a sender that is no role session with "sender_not_session", another
// role with "sender_role", a session of another tenant with
// "sender_mismatch", and without a tenant as [UnverifiedAttribute]
// refuses it, By "sender_session", and counted. It takes [WithTiers],
// [WithTierAttribute], [WithSessionPrefix] and [WithMeterProvider]; it
// panics when roleID is not a role ID or an option does not apply.
func SenderSession(roleID, tenantAttribute string, opts ...Option) Middleware {
	c, err := newConfig("SenderSession", []string{"WithTiers", "WithTierAttribute", "WithSessionPrefix", "WithMeterProvider"}, opts)
	if err != nil {
		panic(err.Error())
	}
	if !strings.HasPrefix(roleID, "AROA") || strings.ContainsAny(roleID, ": ") {
		panic(fmt.Sprintf("message: SenderSession: %q is not the unique ID of a role (AROA…, from aws iam get-role)", roleID))
	}
	prefix := c.sessionPrefix
	if prefix == "" {
		prefix = sessionname.DefaultPrefix
	}
	return trust(refusals.NewCounter(c.meterProvider), func(ctx context.Context, m *Message) (*tenant.Tenant, error) {
		role, session, ok := strings.Cut(m.SenderID, ":")
		switch {
		case m.SenderID == "":
			return nil, reject(bySender, "sender_missing", nil)
		case !ok:
			return nil, reject(bySender, "sender_not_session", nil)
		case role != roleID:
			return nil, reject(bySender, "sender_role", nil)
		}
		// The message state hides the tenant of the context the message
		// was handled in: a tenant here is an outer trust mode's.
		t, ok := tenant.FromContext(ctx)
		if !ok {
			if tenantAttribute == "" {
				return nil, reject(bySender, "tenant_missing", nil)
			}
			var err error
			if t, err = attributeTenant(bySender, m, tenantAttribute, &c); err != nil {
				return nil, err
			}
			t.Source = tenant.SourcePeer
		}
		if session != sessionname.For(prefix, t.ID) {
			return nil, &RejectError{By: bySender, Reason: "sender_mismatch", Tenant: t.ID}
		}
		return &t, nil
	})
}
