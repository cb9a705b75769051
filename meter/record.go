package meter

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"time"
)

// Record is the usage of one tenant on one meter in one window: what a
// billing pipeline ingests. Records are aggregates, never single events.
type Record struct {
	// ID is deterministic: the same tenant, meter, dimensions and window
	// from the same service instance always get the same ID, so a record
	// sent twice is deduplicated downstream (OpenMeter's id, Stripe's
	// identifier, Lago's transaction_id). A window closed before its end
	// ([Recorder.FlushAll], a restart of the same instance) has a record
	// per part, each with an ID of its own: sum them.
	ID string `json:"id"`
	// TenantID is the tenant; empty for usage with no tenant in the
	// context, which is then Unattributed.
	TenantID     string `json:"tenant_id"`
	Unattributed bool   `json:"unattributed,omitempty"`
	// Tier is the tenant's tier at the first use in the window.
	Tier        string            `json:"tier,omitempty"`
	Meter       string            `json:"meter"`
	Value       float64           `json:"value"`
	Unit        string            `json:"unit"`
	WindowStart time.Time         `json:"window_start"`
	WindowEnd   time.Time         `json:"window_end"`
	Service     string            `json:"service"`
	Instance    string            `json:"instance,omitempty"`
	Dimensions  map[string]string `json:"dimensions,omitempty"`
}

// recordID hashes what identifies a record. part numbers the records of
// one window closed early (see aggKey): 0, the usual case, adds nothing to
// the hash, so that IDs stay those of the first release.
func recordID(service, instance, tenantID string, unattributed bool, meter string, dims map[string]string, start time.Time, part int64) string {
	h := sha256.New()
	field := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(service)
	field(instance)
	field(tenantID)
	if unattributed {
		field("\x00unattributed")
	}
	field(meter)
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(k)
		field(dims[k])
	}
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(start.UnixNano()))
	h.Write(t[:])
	if part != 0 {
		field("\x00part")
		binary.BigEndian.PutUint64(t[:], uint64(part))
		h.Write(t[:])
	}
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}
