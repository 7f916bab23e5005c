// Tokens from a second independent issuer, the `jose` npm package (the
// Python suite uses PyJWT), against a real herald server: HS256, RS256,
// PS256 and ES256 accepted from PEM keys and their refusal with a wrong key;
// EdDSA refused (not supported); and a JWK Set served over
// HTTPS by the test (a CA and certificate made with the openssl CLI, given
// to herald as auth.jwks_ca_file): a key rotated in under a new kid works at
// once, and once the JWKS server is gone the last good set keeps working.
// Every refusal is checked together with "nothing was delivered".
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { Client, HeraldServer, tomlConfig, unique } from './lib/harness.mjs';

const SECRET = 'jose-issued-secret-0123456789abcdef-0123456789';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-jose-'));

async function sign(key, alg, claims = {}, kid = undefined) {
  return new SignJWT({ ...claims })
    .setProtectedHeader(kid ? { alg, kid } : { alg })
    .setSubject(claims.sub ?? 'ana')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key);
}

// Connects with `token`; the first reply.
async function connectWith(server, token) {
  const c = await Client.open(server);
  const reply = await c.call({ type: 'connect', token });
  return { c, reply };
}

async function expectRefused(c, reply) {
  assert.equal(reply.type, 'error', JSON.stringify(reply));
  assert.equal(reply.code, 'unauthorized');
  const { code } = await c.closed;
  assert.equal(code, 4001);
}

// A subscriber that must see exactly `expected` (event names) and nothing else:
// a marker published by the server API after the refusals comes next.
async function assertOnly(watcher, channel, server, expected) {
  const res = await fetch(`http://127.0.0.1:${server.port}/api/publish`, {
    method: 'POST',
    body: JSON.stringify({ channel, event: 'marker', data: null }),
  });
  assert.equal(res.status, 200);
  const seen = [];
  for (;;) {
    const ev = await watcher.take((m) => m.type === 'event');
    seen.push(ev.event);
    if (ev.event === 'marker') break;
  }
  assert.deepEqual(seen, [...expected, 'marker']);
}

// --- tokens signed with PEM keys ------------------------------------------------

const keys = {};
let server;
before(async () => {
  for (const [alg, opts] of [
    ['RS256', { modulusLength: 2048 }],
    ['PS256', { modulusLength: 2048 }],
    ['ES256', {}],
  ]) {
    keys[alg] = await generateKeyPair(alg, { ...opts, extractable: true });
    fs.writeFileSync(path.join(dir, `${alg}.pem`), await exportSPKI(keys[alg].publicKey));
  }
  keys.other = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  keys.ed = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const pemKey = (alg) =>
    `[[auth.keys]]\nname = "${alg}"\nalgorithms = ["${alg}"]\npublic_key_file = "${path.join(dir, `${alg}.pem`)}"\n`;
  server = await new HeraldServer({
    name: 'auth-jose',
    config:
      tomlConfig({ engine: { type: 'memory' } }) +
      `\n[[auth.keys]]\nname = "app"\nalgorithms = ["HS256"]\nsecret = "${SECRET}"\n` +
      pemKey('RS256') +
      pemKey('PS256') +
      pemKey('ES256') +
      '\n[namespaces.room]\nsubscribe_access = "authenticated"\npublish_access = "authenticated"\n',
  }).start();
});
after(async () => {
  await server?.stopChecked();
});

test('jose-signed HS256, RS256, PS256 and ES256 tokens connect as their sub; from.user follows', async () => {
  const channel = unique('room:jose');
  const watcher = (await connectWith(server, await sign(new TextEncoder().encode(SECRET), 'HS256', { sub: 'watcher' }))).c;
  assert.equal((await watcher.call({ type: 'subscribe', channel })).type, 'subscribed');
  const cases = [
    ['HS256', new TextEncoder().encode(SECRET)],
    ['RS256', keys.RS256.privateKey],
    ['PS256', keys.PS256.privateKey],
    ['ES256', keys.ES256.privateKey],
  ];
  for (const [alg, key] of cases) {
    const { c, reply } = await connectWith(server, await sign(key, alg, { sub: `user-${alg}` }));
    assert.equal(reply.type, 'connected', `${alg}: ${JSON.stringify(reply)}`);
    assert.equal(reply.user, `user-${alg}`);
    const ack = await c.call({ type: 'publish', channel, event: `by.${alg}`, data: null });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const ev = await watcher.take((m) => m.type === 'event');
    assert.equal(ev.from.user, `user-${alg}`);
    c.close();
  }
});

test('jose-signed tokens with the wrong key, or EdDSA, are refused (4001) and publish nothing', async () => {
  const channel = unique('room:refused');
  const watcher = (await connectWith(server, await sign(new TextEncoder().encode(SECRET), 'HS256'))).c;
  assert.equal((await watcher.call({ type: 'subscribe', channel })).type, 'subscribed');
  const bad = [
    await sign(keys.other.privateKey, 'RS256'), // not the configured RSA key
    await sign(new TextEncoder().encode(`${SECRET}-other`), 'HS256'),
    await sign(keys.ed.privateKey, 'EdDSA'), // unsupported algorithm
  ];
  for (const token of bad) {
    const c = await Client.open(server);
    // The publish right behind the refused connect must not be stored.
    c.send({ type: 'connect', id: 1, token });
    c.send({ type: 'publish', id: 2, channel, event: 'leak', data: null });
    const reply = await c.take((m) => m.id === 1 || m.id === 2);
    assert.equal(reply.id, 1, JSON.stringify(reply));
    await expectRefused(c, reply);
  }
  await assertOnly(watcher, channel, server, []);
});

// --- a JWK Set over HTTPS ------------------------------------------------------

test('JWKS over HTTPS: a key rotated in under a new kid works at once; the last good set outlives the JWKS server', async () => {
  // A CA and a certificate for 127.0.0.1 signed by it.
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=herald test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'san.ext');

  const first = await generateKeyPair('ES256', { extractable: true });
  const second = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = async (pair, kid, alg) => ({ ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' });
  let served = { keys: [await jwk(first, 'k1', 'ES256')] };
  let requests = 0;
  const jwks = https.createServer(
    { key: fs.readFileSync(path.join(dir, 'srv.key')), cert: fs.readFileSync(path.join(dir, 'srv.pem')) },
    (req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(served));
    },
  );
  await new Promise((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${jwks.address().port}/jwks.json`;
  const herald = await new HeraldServer({
    name: 'auth-jwks-https',
    config:
      tomlConfig({
        engine: { type: 'memory' },
        auth: { jwks_url: url, jwks_ca_file: path.join(dir, 'ca.pem'), jwks_min_refetch_ms: 0 },
      }) + '\n[namespaces.room]\nsubscribe_access = "authenticated"\n',
  }).start();
  try {
    assert.ok(requests >= 1, 'fetched at start');
    let { reply } = await connectWith(herald, await sign(first.privateKey, 'ES256', { sub: 'ana' }, 'k1'));
    assert.equal(reply.type, 'connected', JSON.stringify(reply));

    // Rotation: the identity provider adds k2; a k2 token makes herald refetch.
    served = { keys: [await jwk(first, 'k1', 'ES256'), await jwk(second, 'k2', 'RS256')] };
    const before = requests;
    ({ reply } = await connectWith(herald, await sign(second.privateKey, 'RS256', { sub: 'bo' }, 'k2')));
    assert.equal(reply.type, 'connected', JSON.stringify(reply));
    assert.equal(reply.user, 'bo');
    assert.ok(requests > before, 'the unknown kid caused a fetch');

    // Outage: the JWKS server goes away; known keys keep working, an unknown
    // kid is refused.
    await new Promise((resolve) => jwks.close(resolve));
    jwks.closeAllConnections?.();
    ({ reply } = await connectWith(herald, await sign(second.privateKey, 'RS256', { sub: 'cy' }, 'k2')));
    assert.equal(reply.type, 'connected', JSON.stringify(reply));
    const third = await generateKeyPair('ES256', { extractable: true });
    const refused = await connectWith(herald, await sign(third.privateKey, 'ES256', {}, 'k3'));
    await expectRefused(refused.c, refused.reply);
  } finally {
    jwks.close();
    jwks.closeAllConnections?.();
    await herald.stopChecked();
  }
});
