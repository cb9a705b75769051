package testservers

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// oidcScript runs oidc-provider with the configuration oidc.go writes; it
// documents what the provider does.
//
//go:embed oidcprovider.mjs
var oidcScript []byte

// OIDCProviderEnv is the environment variable that names the oidc-provider
// package folder (the one holding its package.json), ahead of the copy that
// scripts/test installs.
const OIDCProviderEnv = "TENANCY_OIDC_PROVIDER"

// DefaultOIDCAudience is the resource, and so the "aud" of access tokens,
// that a token request gets when it names none, unless WithOIDCAudience sets
// another.
const DefaultOIDCAudience = "https://api.example.com"

// oidcRotatePath is the script's own endpoint that rotates the keys.
const oidcRotatePath = "/testservers/rotate-keys"

// OIDCServer is an OpenID provider (the npm package oidc-provider, run with
// node) started for tests, listening on 127.0.0.1 only, with the issuer
// "http://127.0.0.1:PORT" and its discovery document, JWK Set and token
// endpoint at the usual places below it.
//
// It knows the clients given with WithOIDCClient, each allowed the
// client_credentials grant only (client_secret_post or client_secret_basic),
// and answers them with JWT access tokens (RFC 9068: "typ" at+jwt) for the
// resource they ask for, by default Audience, signed with RS256 (or the
// algorithm of WithOIDCAlgorithm) and valid for 10 minutes. A token carries
// "iss", "sub" and "client_id" (the client ID), "aud", "iat", "exp", "jti",
// "scope" (the scopes asked for, all granted) and the claims given for its
// client.
//
// Its signing keys, one RSA and one P-256 key, are generated at the first
// start and kept in its temporary folder, so Stop and Start (or Restart)
// serve the same keys; RotateKeys replaces them while it runs.
//
// The methods are safe for concurrent use; tests that share a server must
// not stop it or rotate its keys.
type OIDCServer struct {
	*Server
	issuer   string
	audience string
	alg      string            // signing algorithm
	secrets  map[string]string // client ID to secret
}

// OIDCOption configures an OIDCServer; see WithOIDCClient.
type OIDCOption func(*oidcConfig)

type oidcConfig struct {
	Audience string       `json:"audience"`
	Alg      string       `json:"alg"`
	KeysFile string       `json:"keys_file"`
	Clients  []oidcClient `json:"clients"`
}

type oidcClient struct {
	ID     string         `json:"id"`
	Secret string         `json:"secret"`
	Claims map[string]any `json:"claims"`
}

// WithOIDCClient registers a client of the provider: id and secret are its
// credentials for the token endpoint, and claims are added to every access
// token it gets, under their names as they are (nested values, numbers and
// arrays included; nil adds none). The provider's registered claims ("iss",
// "sub", "aud", "exp", "iat", "jti", "client_id", "scope") win over claims
// of the same name. Default: no client.
func WithOIDCClient(id, secret string, claims map[string]any) OIDCOption {
	return func(c *oidcConfig) {
		c.Clients = append(c.Clients, oidcClient{ID: id, Secret: secret, Claims: claims})
	}
}

// WithOIDCAudience sets the resource that token requests naming none get
// (their "aud"). Default DefaultOIDCAudience; "" means the default.
func WithOIDCAudience(aud string) OIDCOption {
	return func(c *oidcConfig) { c.Audience = aud }
}

// WithOIDCAlgorithm sets the algorithm access tokens are signed with:
// "RS256" or "ES256". Default "RS256"; "" means the default. The JWK Set
// publishes keys for both.
func WithOIDCAlgorithm(alg string) OIDCOption {
	return func(c *oidcConfig) { c.Alg = alg }
}

func newOIDCConfig(opts []OIDCOption) (oidcConfig, error) {
	var c oidcConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.Audience == "" {
		c.Audience = DefaultOIDCAudience
	}
	if c.Alg == "" {
		c.Alg = "RS256"
	}
	if c.Alg != "RS256" && c.Alg != "ES256" {
		return c, fmt.Errorf("testservers: WithOIDCAlgorithm: %q is not RS256 or ES256", c.Alg)
	}
	if u, err := url.Parse(c.Audience); err != nil || !u.IsAbs() || u.Fragment != "" {
		return c, fmt.Errorf("testservers: WithOIDCAudience: %q is not an absolute URI without a fragment", c.Audience)
	}
	seen := make(map[string]bool)
	for _, cl := range c.Clients {
		switch {
		case cl.ID == "" || cl.Secret == "":
			return c, errors.New("testservers: WithOIDCClient: a client needs an ID and a secret")
		case seen[cl.ID]:
			return c, fmt.Errorf("testservers: WithOIDCClient: client %q given twice", cl.ID)
		}
		seen[cl.ID] = true
	}
	return c, nil
}

// OIDC starts an OpenID provider for the test and stops it at t's cleanup.
// It skips the test when node or oidc-provider is not installed, or fails
// it when TENANCY_REQUIRE_SERVERS=1.
func OIDC(t testing.TB, opts ...OIDCOption) *OIDCServer {
	t.Helper()
	dir := t.TempDir()
	return startForTest(t, func() (*OIDCServer, func(), error) { return startOIDC(dir, opts) })
}

// StartOIDC starts an OpenID provider outside of any test, for a package to
// share one from TestMain; see StartRedis for stop and the error.
func StartOIDC(opts ...OIDCOption) (o *OIDCServer, stop func(), err error) {
	if _, err := findOIDCProvider(); err != nil {
		return nil, func() {}, err
	}
	return inTempDir("testservers-oidc-", func(dir string) (*OIDCServer, func(), error) { return startOIDC(dir, opts) })
}

// startOIDC writes the script and its configuration into dir and starts
// the provider there.
func startOIDC(dir string, opts []OIDCOption) (*OIDCServer, func(), error) {
	cfg, err := newOIDCConfig(opts)
	if err != nil {
		return nil, func() {}, err
	}
	pkg, err := findOIDCProvider()
	if err != nil {
		return nil, func() {}, err
	}
	script := filepath.Join(dir, "oidcprovider.mjs")
	cmdline, err := nodeCommand(script, oidcInstallHint)
	if err != nil {
		return nil, func() {}, err
	}
	cfg.KeysFile = filepath.Join(dir, "keys.json")
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, func() {}, fmt.Errorf("testservers: WithOIDCClient: claims: %w", err)
	}
	cfgFile := filepath.Join(dir, "oidc-config.json")
	if err := os.WriteFile(script, oidcScript, 0o600); err != nil {
		return nil, func() {}, fmt.Errorf("testservers: %w", err)
	}
	if err := os.WriteFile(cfgFile, cfgJSON, 0o600); err != nil {
		return nil, func() {}, fmt.Errorf("testservers: %w", err)
	}
	s := &Server{
		name: "oidc-provider",
		dir:  dir,
		argv: func(port int) []string {
			return append(append([]string(nil), cmdline...), pkg, cfgFile, strconv.Itoa(port))
		},
		probe: func(ctx context.Context, addr string) error {
			return probeDiscovery(ctx, "http://"+addr)
		},
	}
	if err := s.startFirst(); err != nil {
		return nil, func() {}, err
	}
	o := &OIDCServer{
		Server:   s,
		issuer:   "http://" + s.addr(),
		audience: cfg.Audience,
		alg:      cfg.Alg,
		secrets:  make(map[string]string, len(cfg.Clients)),
	}
	for _, c := range cfg.Clients {
		o.secrets[c.ID] = c.Secret
	}
	return o, s.Stop, nil
}

const oidcInstallHint = "oidc-provider not found: run scripts/test (it installs oidc-provider into " +
	serversDir + "/node_modules with npm), or set " + OIDCProviderEnv + " to its package folder"

// findOIDCProvider returns the oidc-provider package folder: the one in
// OIDCProviderEnv, else the copy under .servers/node_modules at the
// repository root.
func findOIDCProvider() (string, error) {
	if dir := os.Getenv(OIDCProviderEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
			return "", fmt.Errorf("testservers: %s=%s: %w", OIDCProviderEnv, dir, err)
		}
		return filepath.Abs(dir)
	}
	if root, err := RepoRoot(); err == nil {
		dir := filepath.Join(root, serversDir, "node_modules", "oidc-provider")
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			return dir, nil
		}
	}
	return "", notInstalled(oidcInstallHint)
}

// probeDiscovery checks that the provider at issuer serves its discovery
// document, for itself.
func probeDiscovery(ctx context.Context, issuer string) error {
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := getJSON(ctx, issuer+"/.well-known/openid-configuration", &doc); err != nil {
		return err
	}
	if doc.Issuer != issuer {
		return fmt.Errorf("discovery document names issuer %q, want %q", doc.Issuer, issuer)
	}
	return nil
}

func getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

// Issuer returns the provider's issuer, "http://127.0.0.1:PORT": the "iss"
// of its tokens and the base of its discovery document.
func (o *OIDCServer) Issuer() string { return o.issuer }

// Audience returns the resource that token requests naming none get: the
// "aud" of the tokens Token returns.
func (o *OIDCServer) Audience() string { return o.audience }

// Token returns an access token for the client clientID (registered with
// WithOIDCClient) with the given scopes, for Audience, from the provider's
// token endpoint with the client_credentials grant. It fails the test if
// the provider refuses.
func (o *OIDCServer) Token(t testing.TB, clientID string, scopes ...string) string {
	t.Helper()
	tok, err := o.RequestToken(clientID, "", scopes...)
	if err != nil {
		t.Fatalf("testservers: token for %s: %v", clientID, err)
	}
	return tok
}

// RequestToken asks the token endpoint for an access token for the client
// clientID with the client_credentials grant and the client's secret (none
// for a client not registered), for resource ("" means Audience) and the
// given scopes. A refusal is returned as an *OIDCError.
func (o *OIDCServer) RequestToken(clientID, resource string, scopes ...string) (string, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {clientID},
		"client_secret": {o.secrets[clientID]},
	}
	if resource != "" {
		form.Set("resource", resource)
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := o.post("/token", form, &answer); err != nil {
		return "", err
	}
	if answer.AccessToken == "" || !strings.EqualFold(answer.TokenType, "Bearer") {
		return "", fmt.Errorf("testservers: token endpoint answered token type %q and no usable token", answer.TokenType)
	}
	return answer.AccessToken, nil
}

// RotateKeys makes the provider sign with new keys from now on, without a
// restart, and returns the key ID of the new key for its signing algorithm.
// The JWK Set publishes the new keys and the ones they replace, so tokens
// signed before still verify; the keys from before the previous rotation
// are dropped. Restarts keep the keys of the last rotation.
func (o *OIDCServer) RotateKeys() (kid string, err error) {
	var answer struct {
		KIDs map[string]string `json:"kids"`
	}
	if err := o.post(oidcRotatePath, nil, &answer); err != nil {
		return "", err
	}
	kid = answer.KIDs[o.alg]
	if kid == "" {
		return "", fmt.Errorf("testservers: oidc-provider rotated its keys but named no %s key", o.alg)
	}
	return kid, nil
}

// OIDCError is an error answer of the provider's token endpoint (RFC 6749,
// section 5.2), or of another of its endpoints.
type OIDCError struct {
	Status      int    // HTTP status
	Code        string // "error", such as "invalid_client" or "invalid_target"
	Description string // "error_description"
	Body        string // the whole answer
}

func (e *OIDCError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Description)
}

// post sends form (empty when nil) to the provider's path and decodes a 200
// answer into out.
func (o *OIDCServer) post(path string, form url.Values, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("testservers: oidc-provider: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("testservers: oidc-provider: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &OIDCError{Status: resp.StatusCode, Body: string(data)}
		var m struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &m) == nil {
			e.Code, e.Description = m.Error, m.Description
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("testservers: oidc-provider answer %q: %w", data, err)
	}
	return nil
}
