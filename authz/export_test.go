package authz

import "time"

// CacheLen returns how many verified tokens v's cache holds, 0 when the
// cache is off. It exists for tests that check the cache stays bounded.
func CacheLen(v *Verifier) int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}

// QueryHasToken exposes queryHasToken to the test that holds it against
// url.ParseQuery.
var QueryHasToken = queryHasToken

// SetIssuersClock sets the clock an Issuers reads for how long it keeps a
// lookup's answer and waits before building a Verifier again.
func SetIssuersClock(is *Issuers, now func() time.Time) { is.now = now }

// TierCacheLen returns how many tenants' tiers v keeps.
func TierCacheLen(v *Verifier) int {
	v.tierLookup.mu.Lock()
	defer v.tierLookup.mu.Unlock()
	return len(v.tierLookup.entries)
}
