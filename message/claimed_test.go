package message_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/message"
)

// TestRefusalsNameTheClaimedTenant: a trust mode's refusal carries the
// tenant the message claimed when it could read a valid one, for the
// audit record, and nothing when the claim is no valid tenant ID.
func TestRefusalsNameTheClaimedTenant(t *testing.T) {
	const roleID = "AROAEXAMPLEID123456"
	unverified := message.UnverifiedAttribute("tenant", message.WithTierAttribute("tier"))
	sender := message.SenderSession(roleID, "tenant", message.WithSessionPrefix("t-"))
	for _, tc := range []struct {
		name   string
		mw     message.Middleware
		m      message.Message
		reason string
		want   string
	}{
		{"unknown tier", unverified, message.Message{Attributes: map[string]string{"tenant": "acme", "tier": "gold"}}, "tier_invalid", "acme"},
		{"unknown tier, invalid tenant", unverified, message.Message{Attributes: map[string]string{"tenant": strings.Repeat("x", 300), "tier": "gold"}}, "tier_invalid", ""},
		{"invalid tenant", unverified, message.Message{Attributes: map[string]string{"tenant": strings.Repeat("x", 300)}}, "tenant_invalid", ""},
		{"no tenant", unverified, message.Message{}, "tenant_missing", ""},
		{"another tenant's session", sender, message.Message{SenderID: roleID + ":t-globex", Attributes: map[string]string{"tenant": "acme"}}, "sender_mismatch", "acme"},
	} {
		err := tc.mw(message.HandlerFunc(func(context.Context, *message.Message) error { return nil })).HandleMessage(context.Background(), &tc.m)
		var rej *message.RejectError
		if !errors.As(err, &rej) || rej.Reason != tc.reason || rej.Tenant != tc.want {
			t.Errorf("%s: %v (tenant %q), want a refusal %s claiming %q", tc.name, err, tenantOf(rej), tc.reason, tc.want)
		}
	}
}

func tenantOf(rej *message.RejectError) string {
	if rej == nil {
		return "<none>"
	}
	return rej.Tenant
}
