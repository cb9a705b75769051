package stamp

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// maxClaimedStamp bounds the stamps whose tenant claim a refusal reads.
const maxClaimedStamp = 16 << 10

// claimedTenant returns the tenant ID the stamp of a refused message
// claims, unverified, for its audit record: "" when it has none, or none
// that is a valid tenant ID. It reads only the claim, never keeps the
// stamp, and runs only for refusals.
func claimedTenant(m *message.Message) string {
	s := m.Attributes[Attribute]
	if s == "" || len(s) > maxClaimedStamp {
		return ""
	}
	_, rest, ok := strings.Cut(s, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var c struct {
		Tenant string `json:"tenant_id"`
	}
	if json.Unmarshal(b, &c) != nil || tenant.ValidateID(c.Tenant) != nil {
		return ""
	}
	return c.Tenant
}
