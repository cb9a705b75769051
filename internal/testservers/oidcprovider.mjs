// oidcprovider.mjs runs oidc-provider for package testservers (oidc.go,
// which embeds this file and writes it to a temporary folder):
//
//	node oidcprovider.mjs PACKAGE_DIR CONFIG_FILE PORT
//
// PACKAGE_DIR is the oidc-provider package folder (imported by path, since
// this file does not live beside node_modules). CONFIG_FILE is JSON written
// by oidc.go:
//
//	{"audience": "...", "alg": "RS256", "keys_file": "...",
//	 "clients": [{"id": "...", "secret": "...", "claims": {...}}]}
//
// The issuer is http://127.0.0.1:PORT. Each client may use the
// client_credentials grant only, authenticating with client_secret_post or
// client_secret_basic, and gets a JWT access token (RFC 9068, "at+jwt") for
// the resource it names (the audience when it names none), with the scopes
// it asked for and its claims added. Registered claims (iss, sub, aud, exp,
// iat, jti, client_id, scope) stay the provider's.
//
// Keys: one RSA (RS256) and one EC P-256 (ES256) signing key, generated on
// the first start and kept in keys_file, so that a restart serves the same
// keys. POST /testservers/rotate-keys generates new current keys while the
// server runs; the keys they replace stay in the JWK Set (so tokens they
// signed still verify) until the next rotation drops them.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [packageDir, configFile, portArg] = process.argv.slice(2);
if (!packageDir || !configFile || !portArg) {
  console.error('usage: node oidcprovider.mjs PACKAGE_DIR CONFIG_FILE PORT');
  process.exit(2);
}

const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const { default: Provider } = await import(pathToFileURL(join(packageDir, pkg.main ?? 'lib/index.js')).href);
const config = JSON.parse(readFileSync(configFile, 'utf8'));
const port = Number(portArg);
const issuer = `http://127.0.0.1:${port}`;
const rotatePath = '/testservers/rotate-keys';
const tokenTTL = 600; // seconds

// Signing keys by algorithm, current first; at most the current and the
// one it replaced.
const generators = {
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
};

function newKey(alg) {
  const { privateKey } = generators[alg]();
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg.toLowerCase()}-${randomUUID()}`, alg, use: 'sig' };
}

function rotated(keys) {
  const next = {};
  for (const alg of Object.keys(generators)) {
    next[alg] = [newKey(alg), ...(keys?.[alg] ?? [])].slice(0, 2);
  }
  return next;
}

function loadKeys() {
  try {
    return JSON.parse(readFileSync(config.keys_file, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
}

function saveKeys(keys) {
  const tmp = `${config.keys_file}.tmp`;
  writeFileSync(tmp, JSON.stringify(keys), { mode: 0o600 });
  renameSync(tmp, config.keys_file);
}

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// build returns a provider that signs with the current keys. The provider
// reads its keys once, so a rotation builds a new one.
function build(keys) {
  const provider = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      client_id: c.id,
      client_secret: c.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
      token_claims: c.claims ?? {},
    })),
    clientAuthMethods: ['client_secret_post', 'client_secret_basic'],
    extraClientMetadata: {
      properties: ['token_claims'],
      validator(_ctx, key, value) {
        if (key === 'token_claims' && !isPlainObject(value)) {
          throw new TypeError('token_claims must be an object');
        }
      },
    },
    // The claims of the client the token is for, under the registered ones.
    extraTokenClaims: async (_ctx, token) => {
      const client = await provider.Client.find(token.clientId);
      return client?.token_claims;
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => config.audience,
        // Any absolute URI is a resource server, with the scopes asked for.
        getResourceServerInfo: async (ctx, resource) => ({
          audience: resource,
          scope: ctx.oidc.params.scope ?? '',
          accessTokenFormat: 'jwt',
          accessTokenTTL: tokenTTL,
          jwt: { sign: { alg: config.alg, kid: keys[config.alg][0].kid } },
        }),
      },
    },
    jwks: { keys: Object.values(keys).flat() },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? tokenTTL },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error:', err));
  return provider;
}

let keys = loadKeys();
if (!keys) {
  keys = rotated(null);
  saveKeys(keys);
}
let handle = build(keys).callback();

const server = createServer((req, res) => {
  if (req.url === rotatePath && req.method === 'POST') {
    try {
      const next = rotated(keys);
      const nextHandle = build(next).callback();
      saveKeys(next);
      keys = next;
      handle = nextHandle;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kids: Object.fromEntries(Object.entries(keys).map(([alg, ks]) => [alg, ks[0].kid])) }));
    } catch (err) {
      console.error('rotate-keys:', err);
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
    return;
  }
  handle(req, res);
});
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${pkg.version} listening, issuer ${issuer}`);
});
