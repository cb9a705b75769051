package authz

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// keys finds the key that verifies a token. It is built once by
// NewVerifier from exactly one source (plus an optional HMAC secret).
type keys struct {
	allowed map[string]bool // algorithms
	hmac    []byte
	static  map[string]crypto.PublicKey
	jwks    keyfunc.Keyfunc
	found   foundKeys // what jwks gave, for tokens that name the same key
}

// foundKeys remembers the key a JWK Set gave for a key ID and algorithm,
// so that the next token signed with it skips the set's storage (a lock,
// a scan of the set and copies of each JWK) and the checks of the key,
// which give the same answer for the same set. Only keys that passed are
// kept, so it holds no more than the set's keys. It is emptied whenever
// the set is replaced (forget), and a key read before a replacement is
// not kept after it (gen).
type foundKeys struct {
	m   atomic.Pointer[map[keyID]any] // copied on write
	mu  sync.Mutex                    // serialises writes
	gen atomic.Uint64
}

type keyID struct{ kid, alg string }

func (f *foundKeys) get(id keyID) (any, bool) {
	if m := f.m.Load(); m != nil {
		key, ok := (*m)[id]
		return key, ok
	}
	return nil, false
}

// put keeps key for id unless the set was replaced since gen was read.
func (f *foundKeys) put(id keyID, key any, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen.Load() != gen {
		return
	}
	next := make(map[keyID]any)
	if m := f.m.Load(); m != nil {
		maps.Copy(next, *m)
	}
	next[id] = key
	f.m.Store(&next)
}

// forget empties the keys found in a set that has been replaced.
func (f *foundKeys) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen.Add(1)
	f.m.Store(nil)
}

func (k *keys) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		// RFC 7515, section 4.1.11: a token whose "crit" header names an
		// extension the recipient does not understand is invalid, and we
		// understand none.
		if _, ok := tok.Header["crit"]; ok {
			return nil, fmt.Errorf("%w: crit header names an extension this verifier does not implement", ErrMalformedToken)
		}
		alg := tok.Method.Alg()
		if !k.allowed[alg] {
			return nil, ErrAlgorithm
		}
		if strings.HasPrefix(alg, "HS") {
			return k.hmac, nil // allowed only with a secret
		}
		kid, hasKID := tok.Header["kid"]
		if hasKID {
			if _, ok := kid.(string); !ok {
				return nil, ErrMalformedToken
			}
		}
		switch {
		case k.static != nil:
			id, _ := kid.(string)
			if key, ok := k.static[id]; ok {
				return key, nil
			}
			return nil, ErrUnknownKey
		case k.jwks != nil:
			if !hasKID {
				// A kid-less token would be tried against every key of
				// the set; real issuers always send one.
				return nil, ErrUnknownKey
			}
			id := keyID{kid.(string), alg}
			if key, ok := k.found.get(id); ok {
				return key, nil
			}
			gen := k.found.gen.Load()
			key, err := k.jwks.KeyfuncCtx(ctx)(tok)
			if err != nil {
				if errors.Is(err, jwkset.ErrKeyNotFound) {
					return nil, ErrUnknownKey
				}
				return nil, fmt.Errorf("%w: %w", ErrUnknownKey, err)
			}
			// The same floor as WithStaticKeys: a published RSA key too
			// short to trust verifies nothing.
			if rk, ok := key.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
				return nil, fmt.Errorf("%w: RSA key of %d bits in the JWK Set", ErrUnknownKey, rk.N.BitLen())
			}
			k.found.put(id, key, gen)
			return key, nil
		}
		return nil, ErrUnknownKey
	}
}

var supportedAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
}

// buildKeys checks the algorithms and the key source of c and builds the
// keys; with a JWK Set URL it fetches the set once, and the returned stop
// ends its background refresh. onChange is called when a refresh changes
// the set.
func (c *config) buildKeys(ctx context.Context, issuer string, onChange func()) (*keys, func(), error) {
	k, err := c.algorithmKeys()
	if err != nil {
		return nil, nil, err
	}
	if err := c.chooseKeySource(); err != nil {
		return nil, nil, err
	}
	switch {
	case c.staticKeys != nil:
		k.static, err = c.checkedStaticKeys()
	case c.jwksJSON != nil:
		k.jwks, err = c.jwksKeys()
	case c.discovery || c.jwksURL != "":
		u, source := c.jwksURL, "WithJWKSURL"
		if c.discovery {
			if u, err = discoverJWKS(ctx, c.httpClient, issuer); err != nil {
				return nil, nil, err
			}
			source = "the jwks_uri of the issuer's discovery document"
		}
		var stop func()
		if k.jwks, stop, err = c.remoteKeys(u, source, c.now, k.found.forget, onChange); err != nil {
			return nil, nil, err
		}
		return k, stop, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return k, func() {}, nil
}

// algorithmKeys returns keys that allow the algorithms of c, with the HMAC
// secret, and no public key yet.
func (c *config) algorithmKeys() (*keys, error) {
	k := &keys{allowed: make(map[string]bool)}
	for _, alg := range c.algorithms {
		if !slices.Contains(supportedAlgorithms, alg) {
			return nil, fmt.Errorf("authz: WithAlgorithms: %q is not supported (supported: %s)", alg, strings.Join(supportedAlgorithms, ", "))
		}
		if strings.HasPrefix(alg, "HS") && c.hmacSecret == nil {
			return nil, fmt.Errorf("authz: WithAlgorithms: %s needs a shared secret: add WithHMACSecret", alg)
		}
		k.allowed[alg] = true
	}
	if c.hmacSecret != nil {
		if len(c.hmacSecret) < 32 {
			return nil, errors.New("authz: WithHMACSecret: the secret must be at least 32 bytes")
		}
		k.hmac = bytes.Clone(c.hmacSecret) // the caller may reuse or wipe theirs
	}
	return k, nil
}

// chooseKeySource refuses more than one key source, and without any picks
// discovery, unless only HMAC algorithms are allowed.
func (c *config) chooseKeySource() error {
	sources := 0
	for _, set := range []bool{c.jwksURL != "", c.discovery, c.staticKeys != nil, c.jwksJSON != nil} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return errors.New("authz: choose one key source: WithJWKSURL, WithDiscovery, WithStaticKeys or WithJWKS")
	}
	onlyHMAC := !slices.ContainsFunc(c.algorithms, func(a string) bool { return !strings.HasPrefix(a, "HS") })
	if sources == 0 && !onlyHMAC {
		c.discovery = true
	}
	return nil
}

// checkedStaticKeys returns a copy of the keys of WithStaticKeys, each
// checked.
func (c *config) checkedStaticKeys() (map[string]crypto.PublicKey, error) {
	if len(c.staticKeys) == 0 {
		return nil, errors.New("authz: WithStaticKeys: no keys given")
	}
	for kid, key := range c.staticKeys {
		if err := checkPublicKey(key); err != nil {
			return nil, fmt.Errorf("authz: WithStaticKeys: key %q: %w", kid, err)
		}
	}
	return maps.Clone(c.staticKeys), nil // read concurrently: never the caller's map
}

// jwksKeys reads the JWK Set document of WithJWKS.
func (c *config) jwksKeys() (keyfunc.Keyfunc, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(c.jwksJSON, &set); err != nil {
		return nil, fmt.Errorf("authz: WithJWKS: the document is not a JWK Set: %w", err)
	}
	store, err := set.ToStorage()
	if err != nil {
		return nil, fmt.Errorf("authz: WithJWKS: the document is not a JWK Set: %w", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: &signingKeys{Storage: store}})
	if err != nil {
		return nil, fmt.Errorf("authz: WithJWKS: %w", err)
	}
	return kf, nil
}

func checkPublicKey(key crypto.PublicKey) error {
	switch key := key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < 2048 {
			return errors.New("RSA keys must have at least 2048 bits")
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T (want *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey)", key)
	}
	return nil
}

// discoverJWKS reads the issuer's OIDC discovery document.
func discoverJWKS(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	where := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return "", fmt.Errorf("authz: OIDC discovery: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("authz: OIDC discovery at %s: %w (set WithJWKSURL to skip discovery)", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("authz: OIDC discovery at %s: status %d (is the issuer URL right? WithJWKSURL skips discovery)", where, resp.StatusCode)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", fmt.Errorf("authz: OIDC discovery at %s: not a discovery document: %w", where, err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("authz: OIDC discovery at %s names issuer %q, not the configured %q: the issuer must match exactly, trailing slash included", where, doc.Issuer, issuer)
	}
	if _, err := url.ParseRequestURI(doc.JWKSURI); err != nil || doc.JWKSURI == "" {
		return "", fmt.Errorf("authz: OIDC discovery at %s: no usable jwks_uri", where)
	}
	return doc.JWKSURI, nil
}

// remoteKeys builds a keyfunc over a JWK Set URL whose storage reports when
// the set of keys changes, so that the token cache can be emptied. source
// says where u came from, for errors.
//
// A token with a key ID the set does not hold makes the set be fetched
// again (a rotation may have published it), through a [keyRefresher]:
// fetches are coalesced and at most one starts per cooldown, so strangers
// sending made-up key IDs cannot make us hammer the issuer, nor keep a
// newly published key out for longer than the cooldown.
func (c *config) remoteKeys(u, source string, now func() time.Time, onReplace, onChange func()) (keyfunc.Keyfunc, func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	report := c.onRefreshError
	if report == nil {
		report = func(err error) {
			slog.Default().Warn("authz: JWK Set refresh failed; keeping the keys fetched before", "url", u, "error", err)
		}
	}
	store := &watchedStore{Storage: jwkset.NewMemoryStorage(), onReplace: onReplace, onChange: onChange}
	remote, err := jwkset.NewStorageFromHTTP(u, jwkset.HTTPClientStorageOptions{
		Client:              c.httpClient,
		Ctx:                 ctx,
		HTTPTimeout:         c.httpTimeout,
		RefreshInterval:     c.refreshInterval,
		RefreshErrorHandler: func(_ context.Context, err error) { report(err) },
		Storage:             store,
	})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("authz: JWK Set at %s (from %s): %w", u, source, err)
	}
	// jwkset fetches a set again only on a read that misses with an
	// unknown-kid limiter; one that never makes anyone wait turns such a
	// read into "fetch now", and the keyRefresher decides when to ask.
	fetcher, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{u: remote},
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
	})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("authz: JWK Set at %s: %w", u, err)
	}
	refresher := &keyRefresher{
		fetch: func(ctx context.Context) {
			// No set holds this key ID: the read always fetches.
			_, _ = fetcher.KeyRead(ctx, "\x00tenancy: refresh")
		},
		cooldown: c.refreshCooldown,
		timeout:  c.httpTimeout,
		now:      now,
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: &signingKeys{Storage: remote, refresher: refresher}})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("authz: JWK Set at %s: %w", u, err)
	}
	return kf, cancel, nil
}

// keyRefresher fetches a JWK Set again when a token names a key ID it does
// not hold. One fetch serves every token that asks while it runs, and none
// starts within cooldown of the last one began: a steady stream of
// made-up key IDs costs one fetch per cooldown, and a key published after
// one of them is fetched by the first token that names it once the
// cooldown has passed.
type keyRefresher struct {
	fetch    func(ctx context.Context)
	cooldown time.Duration
	timeout  time.Duration
	now      func() time.Time

	mu       sync.Mutex
	last     time.Time     // when the last fetch began; zero before any
	inflight chan struct{} // closed when the running fetch ends; nil when none runs
}

// refresh fetches the set, or waits for the fetch that is running, and
// reports whether it did: whether a second look for the key is worth it.
// Within the cooldown it returns false at once.
func (r *keyRefresher) refresh(ctx context.Context) bool {
	r.mu.Lock()
	if ch := r.inflight; ch != nil {
		r.mu.Unlock()
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	now := r.now()
	if !r.last.IsZero() && now.Sub(r.last) < r.cooldown {
		r.mu.Unlock()
		return false
	}
	r.last = now
	ch := make(chan struct{})
	r.inflight = ch
	r.mu.Unlock()

	// The fetch serves others too: a client that hangs up must not abort
	// it halfway. It stays bounded by the fetch timeout.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	r.fetch(fctx)
	cancel()

	r.mu.Lock()
	r.inflight = nil
	r.mu.Unlock()
	close(ch)
	return true
}

// signingKeys is the JWK storage tokens are verified from: it gives out
// only keys meant for signatures, and asks its refresher for another look
// when a key ID is unknown (nil refresher: never).
type signingKeys struct {
	jwkset.Storage
	refresher *keyRefresher
}

// errNotSigningKey is returned for a JWK whose "use" or "key_ops" says it
// is not for verifying signatures.
var errNotSigningKey = errors.New(`the JWK is not for signatures ("use" or "key_ops")`)

func (s *signingKeys) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	jwk, err := s.Storage.KeyRead(ctx, kid)
	if errors.Is(err, jwkset.ErrKeyNotFound) && s.refresher != nil && s.refresher.refresh(ctx) {
		jwk, err = s.Storage.KeyRead(ctx, kid)
	}
	if err != nil {
		return jwkset.JWK{}, err
	}
	// RFC 7517, sections 4.2 and 4.3: a key marked for encryption (or for
	// anything but verify) must not verify a signature.
	m := jwk.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return jwkset.JWK{}, errNotSigningKey
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return jwkset.JWK{}, errNotSigningKey
	}
	return jwk, nil
}

// watchedStore is JWK storage that calls onReplace whenever a refresh
// replaces the key set, and onChange when it replaces it with a different
// one.
type watchedStore struct {
	jwkset.Storage
	onReplace func()
	onChange  func()

	mu     sync.Mutex
	seen   bool
	latest [32]byte
}

func (s *watchedStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := s.Storage.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	if s.onReplace != nil {
		s.onReplace()
	}
	fp := fingerprint(given)
	s.mu.Lock()
	changed := s.seen && fp != s.latest
	s.seen, s.latest = true, fp
	s.mu.Unlock()
	if changed && s.onChange != nil {
		s.onChange()
	}
	return nil
}

func fingerprint(set []jwkset.JWK) [32]byte {
	parts := make([]string, 0, len(set))
	for _, k := range set {
		b, _ := json.Marshal(k.Marshal())
		parts = append(parts, string(b))
	}
	slices.Sort(parts)
	return sha256.Sum256([]byte(strings.Join(parts, "\n")))
}
