// The peer of reauth's oidc-provider integration tests: panva's
// oidc-provider (a certified OpenID provider) on 127.0.0.1, and beside it a
// small protected resource that checks DPoP proofs with the jose library
// (not reauth's code) and requires its own nonces, plus request counters
// per client (GET /counts?client_id=ID).
//
//   node server.mjs PORT DIR
//
// PORT 0 picks a free port. DIR receives the client keys the tests sign
// with (PKCS #8 PEM, made fresh at every start) and, once the server
// listens, the file DIR/ready holding its origin. See integration/README.md.
import { createServer } from 'node:http';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

import Provider from 'oidc-provider';
import {
  calculateJwkThumbprint, EmbeddedJWK, exportJWK, exportPKCS8, generateKeyPair, jwtVerify,
} from 'jose';

const port = Number(process.argv[2] ?? process.env.REAUTH_OIDC_PORT ?? 0);
const dir = process.argv[3] ?? process.env.REAUTH_OIDC_DIR;
if (!Number.isInteger(port) || port < 0 || port > 65535 || !dir) {
  console.error('usage: node server.mjs PORT DIR');
  process.exit(2);
}

// Client secrets and ids the tests use (test-only values).
export const clients = {
  basic: { id: 'basic-client', secret: 'basic-client-secret-1' },
  dpop: { id: 'dpop-client', secret: 'dpop-client-secret-1' },
  dpopProof: { id: 'dpop-proof-client', secret: 'dpop-proof-client-secret-1' },
  noDPoP: { id: 'no-dpop-client', secret: 'no-dpop-client-secret-1' },
};

// Keys of the private_key_jwt clients: made here, private halves written
// for the tests, public halves registered with the provider.
async function clientKey(alg, file, opts) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...opts });
  const path = join(dir, file);
  writeFileSync(path, await exportPKCS8(privateKey), { mode: 0o600 });
  return { ...(await exportJWK(publicKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-1` };
}
const es256 = await clientKey('ES256', 'client-es256.pem');
const eddsa = await clientKey('EdDSA', 'client-ed25519.pem', { crv: 'Ed25519' });

// Requests seen: "METHOD path" → count, per client ID ("-": none known),
// so that tests running at the same time, each with its own clients, can
// count their own.
const counts = new Map(); // client ID → { "METHOD path": count }
function count(method, path, client = '-') {
  const c = counts.get(client) ?? {};
  const k = `${method} ${path}`;
  c[k] = (c[k] ?? 0) + 1;
  counts.set(client, c);
}

const server = createServer();
server.listen(port, '127.0.0.1', async () => {
  const origin = `http://127.0.0.1:${server.address().port}`;
  const grantTypes = ['client_credentials', 'refresh_token'];
  const common = { grant_types: grantTypes, response_types: [], redirect_uris: [] };
  const provider = new Provider(origin, {
    clients: [
      { ...common, client_id: clients.basic.id, client_secret: clients.basic.secret, token_endpoint_auth_method: 'client_secret_basic' },
      { ...common, client_id: clients.dpop.id, client_secret: clients.dpop.secret, token_endpoint_auth_method: 'client_secret_basic', dpop_bound_access_tokens: true },
      { ...common, client_id: clients.dpopProof.id, client_secret: clients.dpopProof.secret, token_endpoint_auth_method: 'client_secret_basic', dpop_bound_access_tokens: true },
      { ...common, client_id: clients.noDPoP.id, client_secret: clients.noDPoP.secret, token_endpoint_auth_method: 'client_secret_basic' },
      { ...common, client_id: 'pkjwt-es256-client', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [es256] } },
      { ...common, client_id: 'pkjwt-eddsa-client', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'EdDSA', jwks: { keys: [eddsa] }, dpop_bound_access_tokens: true },
    ],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    },
    enabledJWA: { dPoPSigningAlgValues: ['ES256', 'EdDSA', 'Ed25519', 'PS256'] },
    rotateRefreshToken: true,
    ttl: { ClientCredentials: 600, AccessToken: 600, RefreshToken: 3600, Grant: 3600 },
    findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  });
  // Provider requests are counted once answered, for the client the
  // provider authenticated (or the one the request named).
  provider.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      let client = ctx.oidc?.client?.clientId;
      try { client ??= ctx.oidc?.params?.client_id; } catch { /* no params on this route */ }
      count(ctx.method, ctx.path, client ?? basicClientID(ctx.get('authorization')));
    }
  });
  // The provider has no per-client switch that refuses DPoP; this client
  // stands for one whose server says so.
  provider.use(async (ctx, next) => {
    if (ctx.path === '/token' && ctx.get('dpop') && basicClientID(ctx.get('authorization')) === clients.noDPoP.id) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_dpop_proof', error_description: 'this client may not use DPoP' };
      return;
    }
    await next();
  });
  // Which client each access token was issued to, kept after revocation,
  // so that a request with a revoked token counts for its client.
  for (const event of ['access_token.saved', 'client_credentials.saved']) {
    provider.on(event, (token) => tokenClients.set(token.jti, token.clientId));
  }
  const oidc = provider.callback();

  server.on('request', (req, res) => {
    const path = new URL(req.url, origin).pathname;
    if (path === '/counts' && req.method === 'GET') {
      // GET /counts?client_id=ID: the requests of that client.
      return json(res, 200, counts.get(new URL(req.url, origin).searchParams.get('client_id') ?? '-') ?? {});
    }
    if (path === '/resource') {
      // Counted in the same turn as the answer (microtasks run before the
      // next request is read), for the client the token belongs to.
      const seen = {};
      return resource(provider, origin, req, res, seen)
        .catch((err) => json(res, 500, { error: String(err) }))
        .finally(() => count(req.method, path, seen.client));
    }
    if (path === '/test/refresh-token' && req.method === 'POST') {
      count(req.method, path);
      return mintRefreshToken(provider, new URL(req.url, origin).searchParams.get('client_id'))
        .then((rt) => json(res, 200, { refresh_token: rt }))
        .catch((err) => json(res, 400, { error: String(err) }));
    }
    return oidc(req, res);
  });

  const ready = join(dir, 'ready');
  writeFileSync(`${ready}.tmp`, `${origin}\n`);
  renameSync(`${ready}.tmp`, ready);
  console.log(`oidc-provider ${origin}`);
});

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function basicClientID(header) {
  const m = /^basic\s+(\S+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString();
  return decodeURIComponent(decoded.slice(0, decoded.indexOf(':')));
}

// The resource's own DPoP nonces: an HMAC of the current 30 s window, the
// previous window's accepted too, so a nonce lives 30 to 60 s.
const resourceNonceKey = randomBytes(32);
const nonceAt = (w) => createHmac('sha256', resourceNonceKey).update(String(w)).digest('base64url');
const window = () => Math.floor(Date.now() / 30000);
const currentNonce = () => nonceAt(window());
function nonceOK(n) {
  if (typeof n !== 'string') return false;
  return [window(), window() - 1].some((w) => {
    const want = Buffer.from(nonceAt(w));
    const got = Buffer.from(n);
    return got.length === want.length && timingSafeEqual(got, want);
  });
}
const tokenClients = new Map(); // opaque access token → client ID
const seenJTIs = new Map(); // jti → expiry (ms): replay detection

// GET /resource: 200 {"client_id", "token_type"} for a valid token. A
// DPoP-bound token needs Authorization: DPoP and a proof (jose checks it:
// typ, signature by the embedded jwk, htm, htu, ath, jkt binding, a fresh
// jti) carrying this resource's nonce; a plain token needs Bearer.
async function resource(provider, origin, req, res, seen) {
  const challenge = (scheme, error, description, extra = {}) => json(res, 401, { error, error_description: description }, {
    'www-authenticate': `${scheme} error="${error}", error_description="${description}", algs="ES256 EdDSA PS256"`,
    ...extra,
  });
  const auth = req.headers.authorization ?? '';
  const m = /^(Bearer|DPoP) ([A-Za-z0-9._~+/-]+=*)$/i.exec(auth);
  if (!m) {
    return json(res, 401, { error: 'invalid_request' }, { 'www-authenticate': 'DPoP algs="ES256 EdDSA PS256", Bearer realm="resource"' });
  }
  const [, scheme, value] = m;
  seen.client = tokenClients.get(value);
  const token = (await provider.ClientCredentials.find(value)) ?? (await provider.AccessToken.find(value));
  seen.client = token?.clientId ?? tokenClients.get(value);
  if (!token || token.isExpired) {
    return challenge(scheme.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', 'invalid_token', 'the access token is not valid');
  }
  const jkt = token['jkt'];
  if (!jkt) {
    if (scheme.toLowerCase() !== 'bearer') {
      return challenge('Bearer', 'invalid_token', 'the token is not DPoP-bound: use Bearer');
    }
    return json(res, 200, { client_id: token.clientId, token_type: 'Bearer' });
  }
  if (scheme.toLowerCase() !== 'dpop') {
    return challenge('DPoP', 'invalid_token', 'the token is DPoP-bound: use DPoP');
  }
  const proof = req.headers.dpop;
  if (typeof proof !== 'string') {
    return challenge('DPoP', 'invalid_dpop_proof', 'no DPoP proof');
  }
  let payload, protectedHeader;
  try {
    ({ payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'EdDSA', 'Ed25519', 'PS256'] }));
  } catch (err) {
    return challenge('DPoP', 'invalid_dpop_proof', 'the proof does not verify');
  }
  const htu = URL.parse(payload.htu);
  if (htu) { htu.search = ''; htu.hash = ''; }
  const ath = createHash('sha256').update(value).digest('base64url');
  if (payload.htm !== req.method || htu?.href !== `${origin}/resource` || payload.ath !== ath
      || typeof payload.jti !== 'string' || Math.abs(Date.now() / 1000 - payload.iat) > 300
      || (await calculateJwkThumbprint(protectedHeader.jwk)) !== jkt) {
    return challenge('DPoP', 'invalid_dpop_proof', 'htm, htu, ath, iat or key binding mismatch');
  }
  if (!nonceOK(payload.nonce)) {
    return challenge('DPoP', 'use_dpop_nonce', 'the resource requires its nonce', { 'dpop-nonce': currentNonce() });
  }
  const now = Date.now();
  for (const [j, exp] of seenJTIs) if (exp < now) seenJTIs.delete(j);
  if (seenJTIs.has(payload.jti)) {
    return challenge('DPoP', 'invalid_dpop_proof', 'the proof was replayed');
  }
  seenJTIs.set(payload.jti, now + 600_000);
  const nonce = currentNonce();
  return json(res, 200, { client_id: token.clientId, token_type: 'DPoP' }, nonce !== payload.nonce ? { 'dpop-nonce': nonce } : {});
}

// POST /test/refresh-token?client_id=ID: a grant and a refresh token for
// ID, as an authorization code exchange would leave them (the tests have no
// browser to go through the authorization endpoint).
async function mintRefreshToken(provider, clientId) {
  const client = await provider.Client.find(clientId ?? '');
  if (!client) throw new Error('unknown client_id');
  const grant = new provider.Grant({ clientId, accountId: 'alice' });
  grant.addOIDCScope('openid offline_access');
  const grantId = await grant.save();
  const rt = new provider.RefreshToken({
    client, accountId: 'alice', grantId, gty: 'authorization_code', scope: 'openid offline_access',
  });
  return rt.save();
}
