// Unit tests of the token functions of @herald/server: every token they
// sign is verified with the independent `jose` package (HS256/384/512,
// RS256, PS256, ES256/384/512), with its claims and header; bad inputs
// (short secret, wrong key type for the algorithm, public key, unknown
// operation) throw without echoing key material. And the admin methods
// disconnect/unsubscribe, and presence, presenceStats, destroy, channels
// and info, against a fake HTTP server: method, path, body, API key,
// results, 401/403 as HeraldError.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import * as jose from 'jose';
import { createConnectionToken, createSubscriptionToken, HeraldError, HeraldServer } from '../dist/index.js';
import * as httpOnly from '../dist/http.js';

const SECRET = '0123456789abcdef0123456789abcdef-test-secret';

function keyPair(type, options) {
  return crypto.generateKeyPairSync(type, {
    ...options,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}
const RSA = keyPair('rsa', { modulusLength: 2048 });
const P256 = keyPair('ec', { namedCurve: 'P-256' });
const P384 = keyPair('ec', { namedCurve: 'P-384' });
const P521 = keyPair('ec', { namedCurve: 'P-521' });

async function verify(token, key, alg, options = {}) {
  const k = typeof key === 'string' && key.includes('PUBLIC KEY') ? await jose.importSPKI(key, alg) : new TextEncoder().encode(key);
  return jose.jwtVerify(token, k, { algorithms: [alg], ...options });
}

test('connection token, HS256 (default): jose verifies it; sub, info, caps, channels, iat, exp = iat + expiresIn', async () => {
  const before = Math.floor(Date.now() / 1000);
  const token = createConnectionToken(
    { sub: 'user-42', info: { name: 'Ann', tags: ['a'] }, caps: { 'chat:*': ['subscribe', 'publish'], 'dm:42': ['subscribe'] }, channels: ['dm:42'], expiresIn: 600 },
    { secret: SECRET },
  );
  const { payload, protectedHeader } = await verify(token, SECRET, 'HS256');
  assert.deepEqual(protectedHeader, { alg: 'HS256', typ: 'JWT' });
  assert.equal(payload.sub, 'user-42');
  assert.deepEqual(payload.info, { name: 'Ann', tags: ['a'] });
  assert.deepEqual(payload.caps, { 'chat:*': ['subscribe', 'publish'], 'dm:42': ['subscribe'] });
  assert.deepEqual(payload.channels, ['dm:42']);
  assert.ok(payload.iat >= before && payload.iat <= before + 2);
  assert.equal(payload.exp - payload.iat, 600);
  assert.deepEqual(Object.keys(payload).sort(), ['caps', 'channels', 'exp', 'iat', 'info', 'sub']);
  // Default lifetime: one hour; nothing optional when not given.
  const plain = await verify(createConnectionToken({ sub: 'u' }, { secret: SECRET }), SECRET, 'HS256');
  assert.equal(plain.payload.exp - plain.payload.iat, 3600);
  assert.deepEqual(Object.keys(plain.payload).sort(), ['exp', 'iat', 'sub']);
  // A wrong secret does not verify.
  await assert.rejects(verify(token, SECRET.replace('0', 'x'), 'HS256'), /signature/);
});

test('HS384 / HS512 with kid, issuer and audience; a secret as bytes', async () => {
  for (const alg of ['HS384', 'HS512']) {
    const token = createConnectionToken({ sub: 'u' }, { secret: Buffer.from(SECRET), algorithm: alg, kid: 'k1', issuer: 'my-app', audience: ['herald'] });
    const { payload, protectedHeader } = await verify(token, SECRET, alg, { issuer: 'my-app', audience: 'herald' });
    assert.deepEqual(protectedHeader, { alg, typ: 'JWT', kid: 'k1' });
    assert.equal(payload.iss, 'my-app');
    assert.deepEqual(payload.aud, ['herald']);
  }
});

test('RS256 and PS256: jose verifies them with the public key', async () => {
  for (const alg of ['RS256', 'PS256']) {
    const token = createSubscriptionToken({ sub: 'u', channel: 'dm:u', caps: ['subscribe', 'history'], expiresIn: 90 }, { privateKey: RSA.privateKey, algorithm: alg, kid: 'rsa-1' });
    const { payload, protectedHeader } = await verify(token, RSA.publicKey, alg);
    assert.deepEqual(protectedHeader, { alg, typ: 'JWT', kid: 'rsa-1' });
    assert.equal(payload.sub, 'u');
    assert.equal(payload.channel, 'dm:u');
    assert.deepEqual(payload.caps, ['subscribe', 'history']);
    assert.equal(payload.exp - payload.iat, 90);
  }
  // A KeyObject works too.
  const token = createConnectionToken({ sub: 'u' }, { privateKey: crypto.createPrivateKey(RSA.privateKey), algorithm: 'RS512' });
  await verify(token, RSA.publicKey, 'RS512');
});

test('ES256 / ES384 / ES512: raw r||s signatures (64 / 96 / 132 bytes) that jose verifies', async () => {
  for (const [alg, pair, size] of [['ES256', P256, 64], ['ES384', P384, 96], ['ES512', P521, 132]]) {
    const token = createConnectionToken({ sub: 'u', info: 'x' }, { privateKey: pair.privateKey, algorithm: alg });
    assert.equal(Buffer.from(token.split('.')[2], 'base64url').length, size, alg);
    const { payload } = await verify(token, pair.publicKey, alg);
    assert.equal(payload.info, 'x');
  }
});

test('bad keys and claims throw a TypeError/RangeError that never contains the key', () => {
  const cases = [
    [() => createConnectionToken({ sub: 'u' }, { secret: 'short' }), RangeError, /at least 32 bytes/],
    [() => createConnectionToken({ sub: 'u' }, { secret: SECRET, algorithm: 'RS256' }), TypeError, /HS256, HS384 or HS512/],
    [() => createConnectionToken({ sub: 'u' }, { privateKey: RSA.privateKey, algorithm: 'ES256' }), TypeError, /EC key on curve prime256v1/],
    [() => createConnectionToken({ sub: 'u' }, { privateKey: P384.privateKey, algorithm: 'ES256' }), TypeError, /prime256v1 \(got ec secp384r1\)/],
    [() => createConnectionToken({ sub: 'u' }, { privateKey: P256.privateKey, algorithm: 'RS256' }), TypeError, /needs an RSA key/],
    [() => createConnectionToken({ sub: 'u' }, { privateKey: RSA.publicKey, algorithm: 'RS256' }), TypeError, /not a private key/],
    [() => createConnectionToken({ sub: 'u' }, { privateKey: RSA.privateKey, algorithm: 'none' }), TypeError, /algorithm must be/],
    [() => createConnectionToken({ sub: 'u' }, {}), TypeError, /secret or privateKey/],
    [() => createConnectionToken({ sub: 'u' }, { secret: SECRET, privateKey: RSA.privateKey, algorithm: 'RS256' }), TypeError, /not both/],
    [() => createConnectionToken({ sub: '' }, { secret: SECRET }), TypeError, /sub must be/],
    [() => createConnectionToken({ sub: 'u', caps: { 'chat:*': ['write'] } }, { secret: SECRET }), TypeError, /unknown operation "write"/],
    [() => createConnectionToken({ sub: 'u', expiresIn: 0 }, { secret: SECRET }), RangeError, /expiresIn/],
    [() => createConnectionToken({ sub: 'u', info: () => 1 }, { secret: SECRET }), TypeError, /JSON value/],
    [() => createSubscriptionToken({ sub: 'u' }, { secret: SECRET }), TypeError, /channel must be/],
  ];
  for (const [fn, type, re] of cases) {
    assert.throws(fn, (e) => e instanceof type && re.test(e.message) && !e.message.includes('BEGIN') && !e.message.includes(SECRET), String(fn));
  }
});

test('@herald/server/http has HeraldServer without the token functions', () => {
  assert.equal(httpOnly.HeraldServer, HeraldServer);
  assert.equal('createConnectionToken' in httpOnly, false);
});

// A fake Herald HTTP API: records requests, answers what `reply` says.
async function fakeApi(reply) {
  const seen = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body: body ? JSON.parse(body) : null });
      const [status, json] = reply(req);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { seen, url: `http://127.0.0.1:${srv.address().port}`, close: () => srv.close() };
}

test('disconnect and unsubscribe: POST with the API key; their counts', async () => {
  const api = await fakeApi((req) => (req.url === '/api/disconnect' ? [200, { disconnected: 2 }] : [200, { unsubscribed: 1 }]));
  try {
    const herald = new HeraldServer({ url: api.url, apiKey: 'test-api-key-0123456789' });
    assert.deepEqual(await herald.disconnect('user-42', 'banned'), { disconnected: 2 });
    assert.deepEqual(await herald.disconnect('user-43'), { disconnected: 2 });
    assert.deepEqual(await herald.unsubscribe('user-42', 'chat:team'), { unsubscribed: 1 });
    assert.deepEqual(api.seen, [
      { method: 'POST', url: '/api/disconnect', auth: 'Bearer test-api-key-0123456789', type: 'application/json', body: { user: 'user-42', reason: 'banned' } },
      { method: 'POST', url: '/api/disconnect', auth: 'Bearer test-api-key-0123456789', type: 'application/json', body: { user: 'user-43' } },
      { method: 'POST', url: '/api/unsubscribe', auth: 'Bearer test-api-key-0123456789', type: 'application/json', body: { user: 'user-42', channel: 'chat:team' } },
    ]);
    await assert.rejects(herald.disconnect(''), TypeError);
  } finally {
    api.close();
  }
});

test('401 and 403 of the API are HeraldError unauthorized / forbidden with their status; a reply without the count is bad_response', async () => {
  const api = await fakeApi((req) => {
    if (!req.headers.authorization) return [401, { type: 'error', code: 'unauthorized', message: 'missing API key' }];
    if (req.url === '/api/disconnect') return [403, { type: 'error', code: 'forbidden', message: 'the key has no admin scope' }];
    return [200, { ok: true }];
  });
  try {
    let err = await new HeraldServer({ url: api.url }).publish('c', 'e', 1).catch((e) => e);
    assert.ok(err instanceof HeraldError);
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.status, 401);
    assert.equal(api.seen[0].auth, undefined);
    err = await new HeraldServer({ url: api.url, apiKey: '' }).history('c').catch((e) => e); // empty key: none sent
    assert.equal(err.code, 'unauthorized');
    const herald = new HeraldServer({ url: api.url, apiKey: 'k' });
    err = await herald.disconnect('u').catch((e) => e);
    assert.equal(err.code, 'forbidden');
    assert.equal(err.status, 403);
    err = await herald.unsubscribe('u', 'c').catch((e) => e);
    assert.equal(err.code, 'bad_response');
  } finally {
    api.close();
  }
  assert.throws(() => new HeraldServer({ url: 'http://x', apiKey: 'has space' }), TypeError);
});

test('presence, presenceStats, destroy, channels, info: method, path (channel percent-encoded), body; replies as documented', async () => {
  const api = await fakeApi((req) => {
    if (req.url.endsWith('/presence')) return [200, { channel: 'chat:room 1', members: [{ client: 'c1', user: 'ana', info: { name: 'Ana' } }, { client: 'c2' }], complete: true }];
    if (req.url.endsWith('/presence-stats')) return [200, { channel: 'chat:room 1', clients: 2, users: 1 }];
    if (req.method === 'DELETE') return [200, { epoch: 'new-epoch' }];
    if (req.url.startsWith('/api/channels')) return [200, { channels: [{ channel: 'chat:a', subscribers: 2 }], total: 7 }];
    return [200, { version: '0.9.0', uptime_s: 12, workers: 2, connections: 3, subscriptions: 4, channels: 1, engine: 'sqlite' }];
  });
  try {
    const herald = new HeraldServer({ url: api.url, apiKey: 'k' });
    assert.deepEqual(await herald.presence('chat:room 1'), {
      members: [{ client: 'c1', user: 'ana', info: { name: 'Ana' } }, { client: 'c2' }],
      complete: true,
    });
    assert.deepEqual(await herald.presenceStats('chat:room 1'), { clients: 2, users: 1 });
    assert.deepEqual(await herald.destroy('chat:room/1'), { epoch: 'new-epoch' });
    assert.deepEqual(await herald.destroy('chat:x', { event: 'chat.destroy', data: { by: 'admin' } }), { epoch: 'new-epoch' });
    assert.deepEqual(await herald.destroy('chat:y', { event: 'bye', data: null }), { epoch: 'new-epoch' });
    assert.deepEqual(await herald.channels(), { channels: [{ channel: 'chat:a', subscribers: 2 }], total: 7 });
    await herald.channels({ prefix: 'chat:', limit: 10 });
    assert.deepEqual(await herald.info(), { version: '0.9.0', uptimeS: 12, workers: 2, connections: 3, subscriptions: 4, channels: 1, engine: 'sqlite' });
    const seen = api.seen.map(({ method, url, type, body }) => [method, url, type ?? null, body]);
    assert.deepEqual(seen, [
      ['GET', '/api/channels/chat%3Aroom%201/presence', null, null],
      ['GET', '/api/channels/chat%3Aroom%201/presence-stats', null, null],
      ['DELETE', '/api/channels/chat%3Aroom%2F1', null, null],
      ['DELETE', '/api/channels/chat%3Ax', 'application/json', { event: 'chat.destroy', data: { by: 'admin' } }],
      ['DELETE', '/api/channels/chat%3Ay', 'application/json', { event: 'bye', data: null }],
      ['GET', '/api/channels', null, null],
      ['GET', '/api/channels?prefix=chat%3A&limit=10', null, null],
      ['GET', '/api/info', null, null],
    ]);
    assert.ok(api.seen.every((r) => r.auth === 'Bearer k'));
    await assert.rejects(herald.destroy(''), TypeError);
  } finally {
    api.close();
  }
});

test('presence, channels and info replies that are not the documented JSON are bad_response; an error reply keeps its code and status', async () => {
  const api = await fakeApi((req) => {
    if (req.url.endsWith('/presence')) return [200, { channel: 'c', members: 'nobody' }];
    if (req.url.endsWith('/presence-stats')) return [200, { channel: 'c' }];
    if (req.method === 'DELETE') return [403, { type: 'error', code: 'forbidden', message: 'the key has no destroy scope' }];
    return [200, {}];
  });
  try {
    const herald = new HeraldServer({ url: api.url });
    for (const p of [herald.presence('c'), herald.presenceStats('c'), herald.channels(), herald.info()]) {
      const err = await p.catch((e) => e);
      assert.ok(err instanceof HeraldError);
      assert.equal(err.code, 'bad_response');
    }
    const err = await herald.destroy('c').catch((e) => e);
    assert.equal(err.code, 'forbidden');
    assert.equal(err.status, 403);
  } finally {
    api.close();
  }
});
