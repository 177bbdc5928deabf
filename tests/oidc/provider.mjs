#!/usr/bin/env node
// A test OIDC provider that looks like authentik 2026.2 to a client_credentials client (endpoints, token claims,
// error codes), built on the npm package oidc-provider. Driven from Rust by tests/support/oidc.rs.
//
//   node provider.mjs [--port N] [--slug frp] [--clients FILE] [--ttl SECONDS] [--alg RS256|ES256]
//                     [--key-file PATH] [--native-errors]
//
// URLs (HOST = the request's Host header, 127.0.0.1:PORT by default; like authentik, `iss` follows it):
//   issuer      http://HOST/application/o/<slug>/
//   discovery   http://HOST/application/o/<slug>/.well-known/openid-configuration
//   JWKS        http://HOST/application/o/<slug>/jwks/
//   token       http://HOST/application/o/token/            (POST, form-encoded)
//   admin       POST /__admin/rotate-key, POST /__admin/ttl?seconds=N, GET /__admin/count
//
// stdout carries exactly one line, once listening:
//   {"ready":true,"port":N,"issuer":"...","token_endpoint":"..."}
// everything else goes to stderr. SIGTERM/SIGINT close the server and exit 0.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

// oidc-provider prints notices with console.info (stdout): keep stdout for the ready line only.
console.log = console.error;
console.info = console.error;

const { default: Provider } = await import('oidc-provider');

const ACR = 'goauthentik.io/providers/oauth2/default';
const KNOWN_SCOPES = ['openid', 'profile', 'email'];
const DEFAULT_CLIENTS = [
  { client_id: 'portway-test-client', client_secret: 'portway-test-secret' },
  { client_id: 'other-client', client_secret: 'other-secret' },
];
// authentik's TokenError descriptions (RFC 6749 wording).
const DESCRIPTIONS = {
  invalid_request: 'The request is otherwise malformed',
  invalid_client:
    'Client authentication failed (e.g., unknown client, no client authentication included, '
    + 'or unsupported authentication method)',
  invalid_grant:
    'The provided authorization grant or refresh token is invalid, expired, revoked, does not match '
    + 'the redirection URI used in the authorization request, or was issued to another client',
  unauthorized_client: 'The client is not authorized to use this authorization grant type',
  unsupported_grant_type: 'The authorization grant type is not supported by the authorization server',
  invalid_scope: 'The requested scope is invalid, unknown, or malformed',
};

// ---------------------------------------------------------------------------------------------- CLI

function usage(message) {
  if (message) console.error(`provider.mjs: ${message}`);
  console.error('usage: node provider.mjs [--port N] [--slug SLUG] [--clients FILE] [--ttl SECONDS] '
    + '[--alg RS256|ES256] [--key-file PATH] [--native-errors]');
  process.exit(2);
}

function positiveInt(value, name) {
  if (!/^[0-9]+$/.test(value ?? '') || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    usage(`${name} wants a positive integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

const opts = { port: 0, slug: 'frp', clients: null, ttl: 3600, alg: 'RS256', keyFile: null, nativeErrors: false };
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    const value = () => {
      if (i + 1 >= args.length) usage(`${arg} wants a value`);
      i += 1;
      return args[i];
    };
    switch (arg) {
      case '--port': {
        const v = value();
        if (!/^[0-9]+$/.test(v) || Number(v) > 65535) usage(`bad --port ${v}`);
        opts.port = Number(v);
        break;
      }
      case '--slug': opts.slug = value(); break;
      case '--clients': opts.clients = value(); break;
      case '--ttl': opts.ttl = positiveInt(value(), '--ttl'); break;
      case '--alg': opts.alg = value(); break;
      case '--key-file': opts.keyFile = value(); break;
      case '--native-errors': opts.nativeErrors = true; break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!/^[A-Za-z0-9_-]+$/.test(opts.slug)) usage(`bad --slug ${opts.slug}`);
  if (!['RS256', 'ES256'].includes(opts.alg)) usage(`--alg must be RS256 or ES256, got ${opts.alg}`);
}

function loadClients() {
  if (!opts.clients) return DEFAULT_CLIENTS;
  const list = JSON.parse(fs.readFileSync(opts.clients, 'utf8'));
  if (!Array.isArray(list) || list.some((c) => typeof c?.client_id !== 'string' || typeof c?.client_secret !== 'string'
    || !c.client_id || !c.client_secret)) {
    usage(`${opts.clients}: want a JSON array of {"client_id": "...", "client_secret": "..."}`);
  }
  return list.map(({ client_id, client_secret }) => ({ client_id, client_secret }));
}

const clients = new Map(loadClients().map((c) => [c.client_id, c.client_secret]));

// ---------------------------------------------------------------------------------------------- keys

// authentik's kids are 86 base64url characters (a SHA-512 digest); imitate the shape.
function newKey(alg) {
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const pub = alg === 'ES256' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  const kid = crypto.createHash('sha512').update(JSON.stringify(pub)).digest('base64url');
  return { ...jwk, kid, alg, use: 'sig' };
}

function saveKeys() {
  if (!opts.keyFile) return;
  const tmp = `${opts.keyFile}.tmp-${process.pid}`;
  fs.mkdirSync(path.dirname(path.resolve(opts.keyFile)), { recursive: true });
  fs.writeFileSync(tmp, `${JSON.stringify({ keys: [state.key] }, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, opts.keyFile);
}

function loadOrCreateKey() {
  if (opts.keyFile && fs.existsSync(opts.keyFile)) {
    try {
      const { keys } = JSON.parse(fs.readFileSync(opts.keyFile, 'utf8'));
      const key = keys?.find((k) => k.alg === opts.alg && k.kid && k.d);
      if (key) {
        console.error(`[oidc] reusing signing key ${key.kid.slice(0, 12)}... from ${opts.keyFile}`);
        return { key, fresh: false };
      }
      console.error(`[oidc] ${opts.keyFile} holds no ${opts.alg} private key: making a new one`);
    } catch (err) {
      console.error(`[oidc] cannot read ${opts.keyFile} (${err.message}): making a new key`);
    }
  }
  return { key: newKey(opts.alg), fresh: true };
}

const state = {
  ttl: opts.ttl,
  issued: 0,
  key: null,
  providers: new Map(), // Host header -> Provider (issuer follows Host, as in authentik)
  port: 0,
};
{
  const { key, fresh } = loadOrCreateKey();
  state.key = key;
  if (fresh) saveKeys();
}

function rotateKey() {
  state.key = newKey(opts.alg);
  state.providers.clear(); // a provider's keystore is fixed: new ones pick up the new key
  saveKeys();
  console.error(`[oidc] rotated signing key: kid ${state.key.kid.slice(0, 12)}...`);
  return state.key.kid;
}

// ---------------------------------------------------------------------------------------------- JWT bits

const b64json = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decodePart = (jwt, i) => JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString('utf8'));

function signJwt(payload) {
  const header = { alg: opts.alg, kid: state.key.kid, typ: 'JWT' };
  const input = `${b64json(header)}.${b64json(payload)}`;
  const key = crypto.createPrivateKey({ key: state.key, format: 'jwk' });
  const signature = opts.alg === 'ES256'
    ? crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : crypto.sign('sha256', Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}

const subjectOf = (clientId) => crypto.createHash('sha256').update(`portway-test:${clientId}`).digest('hex');
const serviceAccount = () => `ak-${opts.slug}-client_credentials`;

// Claims the profile / email scope mappings of authentik add for a service account.
function scopeClaims(scopes) {
  const claims = {};
  if (scopes.includes('email')) Object.assign(claims, { email: '', email_verified: true });
  if (scopes.includes('profile')) {
    const name = serviceAccount();
    Object.assign(claims, { name, given_name: name, preferred_username: name, nickname: name, groups: [] });
  }
  return claims;
}

// ---------------------------------------------------------------------------------------------- provider

function issuerFor(host) {
  return `http://${host}/application/o/${opts.slug}/`;
}

function providerFor(host) {
  let provider = state.providers.get(host);
  if (provider) return provider;
  const resource = `urn:portway-test:application:${opts.slug}`;
  provider = new Provider(issuerFor(host), {
    clients: [...clients].map(([client_id, client_secret]) => ({
      client_id,
      client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', // accepts client_secret_post too
    })),
    jwks: { keys: [state.key] },
    clientAuthMethods: ['client_secret_post', 'client_secret_basic'],
    clientDefaults: { id_token_signed_response_alg: opts.alg },
    enabledJWA: { idTokenSigningAlgValues: [opts.alg] },
    scopes: KNOWN_SCOPES,
    routes: { jwks: '/jwks/', token: '/token/' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, _indicator, client) => ({
          scope: KNOWN_SCOPES.join(' '),
          audience: client.clientId,
          accessTokenTTL: state.ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: opts.alg } },
        }),
      },
    },
    ttl: { ClientCredentials: () => state.ttl },
    formats: {
      customizers: {
        // Reshape oidc-provider's at+jwt into authentik's access token.
        async jwt(_ctx, _token, jwt) {
          const p = jwt.payload;
          const scope = p.scope || '';
          jwt.header = { typ: 'JWT' };
          jwt.payload = {
            iss: p.iss,
            sub: subjectOf(p.client_id),
            aud: p.client_id,
            exp: p.exp,
            iat: p.iat,
            auth_time: p.iat,
            acr: ACR,
            jti: p.jti,
            azp: p.client_id,
            uid: crypto.randomBytes(20).toString('hex'),
            scope,
            ...scopeClaims(scope.split(' ')),
          };
        },
      },
    },
  });
  provider.use(postProcess);
  provider.on('server_error', (_ctx, err) => console.error('[oidc] server_error', err));
  state.providers.set(host, provider);
  return provider;
}

function handlerFor(host) {
  const provider = providerFor(host);
  provider.portwayHandler ??= provider.callback();
  return provider.portwayHandler;
}

// Runs around oidc-provider's own handling of each request.
async function postProcess(ctx, next) {
  await next();
  const info = ctx.req.portway;
  if (!info) return;
  const host = info.host;
  if (info.route === 'discovery' && ctx.status === 200 && ctx.body) {
    ctx.body.token_endpoint = `http://${host}/application/o/token/`;
    ctx.body.token_endpoint_auth_methods_supported = ['client_secret_post', 'client_secret_basic'];
  } else if (info.route === 'jwks' && ctx.status === 200) {
    ctx.type = 'application/json';
  } else if (info.route === 'token') {
    if (ctx.status === 200 && ctx.body?.access_token) {
      const accessToken = ctx.body.access_token;
      const claims = decodePart(accessToken, 1);
      const digest = crypto.createHash('sha256').update(accessToken).digest();
      const { scope, jti: _jti, uid: _uid, ...idClaims } = claims;
      const idToken = signJwt({ ...idClaims, at_hash: digest.subarray(0, 16).toString('base64url') });
      ctx.body = {
        access_token: accessToken,
        token_type: 'Bearer',
        scope,
        expires_in: ctx.body.expires_in,
        id_token: idToken,
      };
      state.issued += 1;
      console.error(`[oidc] token #${state.issued} for ${info.clientId} scope=${JSON.stringify(scope)} `
        + `exp-iat=${claims.exp - claims.iat}`);
    } else if (ctx.status >= 400) {
      const native = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
      if (!opts.nativeErrors) {
        const error = authentikError(info, native.error);
        ctx.status = 400;
        ctx.remove('WWW-Authenticate');
        ctx.body = { error, error_description: DESCRIPTIONS[error] ?? native.error_description, request_id: info.requestId };
      }
      console.error(`[oidc] token request refused: ${ctx.status} ${JSON.stringify(ctx.body)} `
        + `(oidc-provider said ${native.error}: ${native.error_description})`);
    }
  }
}

// The order in which authentik's TokenView decides (providers/oauth2/views/token.py).
function authentikError(info, nativeError) {
  if (!info.clientId || !clients.has(info.clientId)) return 'invalid_client';
  if (info.grantType !== 'client_credentials') return 'unsupported_grant_type';
  if (!info.secretMatches) return 'invalid_grant';
  return nativeError || 'invalid_request';
}

// ---------------------------------------------------------------------------------------------- HTTP front

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 56 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// authentik's extract_client_auth: a Basic header wins, its parts percent-decoded; else the form fields.
function clientAuth(req, form) {
  const header = req.headers.authorization ?? '';
  if (/^Basic\s.+$/.test(header)) {
    try {
      const decoded = Buffer.from(header.split(/\s+/)[1], 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      const id = i === -1 ? decoded : decoded.slice(0, i);
      const secret = i === -1 ? '' : decoded.slice(i + 1);
      return { clientId: decodeURIComponent(id), clientSecret: decodeURIComponent(secret), via: 'basic' };
    } catch {
      return { clientId: '', clientSecret: '', via: 'basic' };
    }
  }
  return { clientId: form.get('client_id') ?? '', clientSecret: form.get('client_secret') ?? '', via: 'post' };
}

function secretMatches(clientId, secret) {
  const want = clients.get(clientId);
  if (want === undefined || !secret) return false;
  const a = Buffer.from(want);
  const b = Buffer.from(secret);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

async function handleToken(req, res, host) {
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST', 'content-length': 0 });
    res.end();
    return;
  }
  const raw = await readBody(req);
  const isForm = (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
  const form = new URLSearchParams(isForm ? raw : '');
  const auth = clientAuth(req, form);
  const info = {
    route: 'token',
    host,
    clientId: auth.clientId,
    grantType: form.get('grant_type') ?? '',
    secretMatches: secretMatches(auth.clientId, auth.clientSecret),
    requestId: crypto.randomBytes(16).toString('hex'),
  };
  const audience = form.getAll('audience');
  if (audience.length) {
    console.error(`[oidc] request asks for audience ${JSON.stringify(audience)}: ignored, aud stays the client_id`);
  }
  if (form.has('resource')) console.error(`[oidc] ignoring resource ${JSON.stringify(form.getAll('resource'))}`);

  if (!opts.nativeErrors) {
    // Hand oidc-provider the request authentik would see: single values (the last one wins, like Django),
    // credentials as form fields, known scopes only.
    const scopes = [...new Set((form.get('scope') ?? '').split(/\s+/).filter((s) => KNOWN_SCOPES.includes(s)))];
    const normalised = new URLSearchParams();
    if (info.grantType) normalised.set('grant_type', info.grantType);
    if (scopes.length) normalised.set('scope', scopes.join(' '));
    if (auth.clientId) normalised.set('client_id', auth.clientId);
    if (auth.clientSecret) normalised.set('client_secret', auth.clientSecret);
    req.body = normalised.toString();
    req.headers['content-type'] = 'application/x-www-form-urlencoded';
    delete req.headers.authorization;
  } else {
    req.body = raw;
  }
  // koa decides "has a body" from these headers; the body itself is handed over as req.body.
  delete req.headers['transfer-encoding'];
  req.headers['content-length'] = String(Buffer.byteLength(req.body));
  req.originalUrl = '/application/o/token/';
  req.url = '/token/';
  req.portway = info;
  handlerFor(host)(req, res);
}

async function handleAdmin(req, res, url) {
  const name = url.pathname.slice('/__admin/'.length);
  if (name === 'count' && (req.method === 'GET' || req.method === 'POST')) {
    return sendJson(res, 200, { count: state.issued });
  }
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
  await readBody(req);
  if (name === 'rotate-key') return sendJson(res, 200, { kid: rotateKey() });
  if (name === 'ttl') {
    const v = url.searchParams.get('seconds') ?? '';
    if (!/^[0-9]+$/.test(v) || Number(v) <= 0 || !Number.isSafeInteger(Number(v))) {
      return sendJson(res, 400, { error: 'ttl wants ?seconds=N with N > 0' });
    }
    state.ttl = Number(v);
    console.error(`[oidc] token lifetime now ${state.ttl}s`);
    return sendJson(res, 200, { ttl: state.ttl });
  }
  return sendJson(res, 404, { error: `no admin endpoint ${name}` });
}

function hostOf(req) {
  const host = req.headers.host;
  return host && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? host : `127.0.0.1:${state.port}`;
}

const prefix = `/application/o/${opts.slug}/`;

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://placeholder');
    const host = hostOf(req);
    if (url.pathname.startsWith('/__admin/')) {
      await handleAdmin(req, res, url);
    } else if (url.pathname === '/application/o/token/') {
      await handleToken(req, res, host);
    } else if (url.pathname.startsWith(prefix) && !url.pathname.startsWith(`${prefix}token`)) {
      const rest = req.url.slice(prefix.length - 1);
      const pathname = url.pathname.slice(prefix.length - 1);
      req.originalUrl = req.url;
      req.url = rest;
      req.portway = {
        host,
        route: {
          '/.well-known/openid-configuration': 'discovery',
          '/jwks/': 'jwks',
        }[pathname],
      };
      handlerFor(host)(req, res);
    } else {
      sendJson(res, 404, { error: 'not_found', path: url.pathname });
    }
  } catch (err) {
    console.error('[oidc] request failed:', err);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err.message) });
    else res.destroy();
  }
});

function shutdown(signal) {
  console.error(`[oidc] ${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

server.listen(opts.port, '127.0.0.1', () => {
  state.port = server.address().port;
  const host = `127.0.0.1:${state.port}`;
  providerFor(host); // fail early on a configuration error
  process.stdout.write(`${JSON.stringify({
    ready: true,
    port: state.port,
    issuer: issuerFor(host),
    token_endpoint: `http://${host}/application/o/token/`,
  })}\n`);
  console.error(`[oidc] listening on ${host}, issuer ${issuerFor(host)}, ${opts.alg}, ttl ${state.ttl}s, `
    + `clients ${[...clients.keys()].join(', ')}${opts.nativeErrors ? ', native errors' : ''}`);
});
server.on('error', (err) => {
  console.error(`[oidc] cannot listen on 127.0.0.1:${opts.port}: ${err.message}`);
  process.exit(1);
});
