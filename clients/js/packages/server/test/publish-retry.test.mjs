// HeraldServer.publish and idempotency keys (issue 12): the key in the body
// and as the Idempotency-Key header (random, or the caller's); retries with
// the same key and bytes after a network error, a timeout or a 5xx, bounded,
// with backoff; no retry after a 4xx, nor for ephemeral publishes (which have
// no key). With a fake fetch, then against the real binary: replayed and
// idempotency_conflict (409), and a retry after a lost reply stores once.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { HeraldError, HeraldServer } from '../dist/index.js';
import { Server } from '../../client/test/support/server.mjs';

const FAST = { attempts: 4, initialDelayMs: 1, maxDelayMs: 5 };
const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

// A fetch that answers each call with the next of `script` (a Response, an Error to throw, or 'hang').
function fakeFetch(script) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, headers: init.headers, body: init.body });
    const next = script[Math.min(calls.length - 1, script.length - 1)];
    if (next === 'hang') {
      return new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
    }
    if (next instanceof Error) throw next;
    return next();
  };
  return { f, calls };
}

const reset = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } });

test('a random key, in the body and as the Idempotency-Key header; the caller may give its own', async () => {
  const { f, calls } = fakeFetch([() => json(200, { offset: 3 })]);
  const api = new HeraldServer({ url: 'http://h', fetch: f, retry: FAST });
  assert.deepEqual(await api.publish('c', 'e', { a: 1 }), { offset: 3, replayed: false });
  assert.deepEqual(await api.publish('c', 'e', { a: 1 }, { idempotencyKey: 'order-7' }), { offset: 3, replayed: false });
  const [b1, b2] = calls.map((c) => JSON.parse(c.body));
  assert.match(b1.idempotency_key, /^[0-9a-f-]{36}$/);
  assert.equal(calls[0].headers['idempotency-key'], b1.idempotency_key);
  assert.equal(b2.idempotency_key, 'order-7');
  assert.equal(calls[1].headers['idempotency-key'], 'order-7');
  const bad = await api.publish('c', 'e', 1, { idempotencyKey: 'a b' }).catch((e) => e);
  assert.equal(bad.code, 'bad_request');
  assert.match(bad.message, /^idempotency_key: invalid character ' ' at 1/);
  assert.equal(calls.length, 2);
});

test('network error, timeout and 5xx are retried with the same key and bytes; replayed passes through', async () => {
  const { f, calls } = fakeFetch([
    reset(),
    'hang',
    () => json(503, { code: 'internal', message: 'engine busy' }),
    () => json(200, { offset: 9, replayed: true }),
  ]);
  const api = new HeraldServer({ url: 'http://h', fetch: f, retry: FAST, timeoutMs: 50 });
  assert.deepEqual(await api.publish('c', 'e', { a: 1 }), { offset: 9, replayed: true });
  assert.equal(calls.length, 4);
  assert.equal(new Set(calls.map((c) => c.body)).size, 1);
  assert.equal(new Set(calls.map((c) => c.headers['idempotency-key'])).size, 1);
});

test('attempts are bounded: the last error, its code and status, the key in details and "outcome is unknown"', async () => {
  const { f, calls } = fakeFetch([() => json(500, { code: 'internal', message: 'disk full' })]);
  const api = new HeraldServer({ url: 'http://h', fetch: f, retry: { attempts: 3, initialDelayMs: 1, maxDelayMs: 2 } });
  const err = await api.publish('c', 'e', 1, { idempotencyKey: 'k-1' }).catch((e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'internal');
  assert.equal(err.status, 500);
  assert.match(err.message, /^disk full \(publish gave up after 3 attempts with idempotency key k-1: the outcome is unknown/);
  assert.deepEqual(err.details, { idempotencyKey: 'k-1', channel: 'c' });
  assert.equal(calls.length, 3);

  const once = fakeFetch([reset()]);
  const noRetry = new HeraldServer({ url: 'http://h', fetch: once.f, retry: false });
  assert.equal((await noRetry.publish('c', 'e', 1).catch((e) => e)).code, 'unreachable');
  assert.equal(once.calls.length, 1);
});

test('4xx is final (idempotency_conflict, validation_failed, rate_limited): one attempt', async () => {
  for (const [status, code] of [
    [409, 'idempotency_conflict'],
    [422, 'validation_failed'],
    [429, 'rate_limited'],
  ]) {
    const { f, calls } = fakeFetch([() => json(status, { code, message: code })]);
    const api = new HeraldServer({ url: 'http://h', fetch: f, retry: FAST });
    const err = await api.publish('c', 'e', 1).catch((e) => e);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    assert.equal(calls.length, 1);
  }
});

test('ephemeral publishes: no key, no retry; a key on one is refused', async () => {
  const { f, calls } = fakeFetch([() => json(503, { code: 'internal', message: 'x' })]);
  const api = new HeraldServer({ url: 'http://h', fetch: f, retry: FAST });
  assert.equal((await api.publish('c', 'e', 1, { ephemeral: true }).catch((e) => e)).status, 503);
  assert.equal(calls.length, 1);
  assert.equal('idempotency-key' in calls[0].headers, false);
  assert.equal('idempotency_key' in JSON.parse(calls[0].body), false);
  const err = await api.publish('c', 'e', 1, { ephemeral: true, idempotencyKey: 'k' }).catch((e) => e);
  assert.equal(err.message, 'idempotency_key: not allowed on ephemeral events');
});

// --- against the real binary

let server;
let skip = false;
before(async () => {
  server = await new Server().start();
  const ch = `probe-${crypto.randomBytes(4).toString('hex')}`;
  const a = await server.publish({ channel: ch, event: 'p', data: 1, idempotency_key: 'probe' });
  const b = await server.publish({ channel: ch, event: 'p', data: 1, idempotency_key: 'probe' });
  if (a.status !== 200 || b.json.replayed !== true) skip = `this herald binary does not implement idempotency keys (${JSON.stringify(b.json)})`;
});
after(async () => {
  await server.stop();
});

test('real server: the same key again is replayed with the original offset; other data is idempotency_conflict 409', async (t) => {
  if (skip) return t.skip(skip);
  const api = new HeraldServer({ url: `http://127.0.0.1:${server.port}` });
  const ch = `once-${crypto.randomBytes(4).toString('hex')}`;
  assert.deepEqual(await api.publish(ch, 'e', { n: 1 }, { idempotencyKey: 'k1' }), { offset: 1, replayed: false });
  assert.deepEqual(await api.publish(ch, 'e', { n: 1 }, { idempotencyKey: 'k1' }), { offset: 1, replayed: true });
  const err = await api.publish(ch, 'e', { n: 2 }, { idempotencyKey: 'k1' }).catch((e) => e);
  assert.equal(err.code, 'idempotency_conflict');
  assert.equal(err.status, 409);
  assert.equal(err.message, `idempotency_key k1 was already used on ${ch} for another event or data (offset 1)`);
  assert.equal((await api.history(ch)).events.length, 1);
});

test('real server: a reply lost on the way back (proxy answers 502 after forwarding) is retried and stored once', async (t) => {
  if (skip) return t.skip(skip);
  // A proxy that forwards every request, but turns the first reply into a 502.
  let n = 0;
  const proxy = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const headers = { 'content-type': 'application/json' };
    if (req.headers['idempotency-key']) headers['idempotency-key'] = req.headers['idempotency-key'];
    const upstream = await fetch(`http://127.0.0.1:${server.port}${req.url}`, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
    const text = await upstream.text();
    if (n++ === 0) res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad gateway</h1>');
    else res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  try {
    const api = new HeraldServer({ url: `http://127.0.0.1:${proxy.address().port}`, retry: FAST });
    const ch = `lost-${crypto.randomBytes(4).toString('hex')}`;
    assert.deepEqual(await api.publish(ch, 'e', { n: 1 }), { offset: 1, replayed: true });
    assert.equal(n, 2);
    const direct = new HeraldServer({ url: `http://127.0.0.1:${server.port}` });
    assert.deepEqual((await direct.history(ch)).events.map((e) => [e.offset, e.data]), [[1, { n: 1 }]]);
  } finally {
    proxy.close();
  }
});
