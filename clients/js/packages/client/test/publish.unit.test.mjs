// Unit tests of exactly-once publishing (issue 12) against a fake WebSocket:
// every stored publish carries an idempotency key (random, or the caller's),
// is queued (bounded by count and bytes) while not connected, is sent again
// with the same key and the same bytes after a drop until acknowledged,
// refused or past publishTimeoutMs; ephemeral publishes have no key and are
// never retried.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Herald, HeraldError, idempotencyKeyError, newIdempotencyKey } from '../dist/index.js';
import { fakeSocketClass, sleep, until, waitState } from './support/fake-socket.mjs';

const FAST = { initialDelayMs: 5, maxDelayMs: 20, factor: 2, jitter: 0 };
const KEY = /^[A-Za-z0-9_\-.:]{1,128}$/;

function make(opts = {}, sockOpts = {}) {
  const WS = fakeSocketClass(sockOpts);
  const herald = new Herald({ url: 'ws://fake/ws', WebSocket: WS, reconnect: FAST, requestTimeoutMs: 200, ...opts });
  return { WS, herald };
}

async function connected(opts, sockOpts) {
  const r = make(opts, sockOpts);
  r.herald.connect();
  await waitState(r.herald, 'connected');
  return r;
}

test('every stored publish carries a random idempotency key, a new one per call; the caller may give its own', async () => {
  const { WS, herald } = await connected();
  const p1 = herald.publish('a', 'e', 1);
  const p2 = herald.publish('a', 'e', 1);
  const p3 = herald.publish('a', 'e', 2, { idempotencyKey: 'order-42:v1' });
  const [m1, m2, m3] = WS.last.sentOfType('publish');
  assert.match(m1.idempotency_key, KEY);
  assert.match(m2.idempotency_key, KEY);
  assert.notEqual(m1.idempotency_key, m2.idempotency_key);
  assert.equal(m3.idempotency_key, 'order-42:v1');
  WS.last.serverSend({ type: 'ack', id: m1.id, offset: 1 });
  WS.last.serverSend({ type: 'ack', id: m2.id, offset: 2 });
  WS.last.serverSend({ type: 'ack', id: m3.id, offset: 1, replayed: true });
  assert.deepEqual(await p1, { offset: 1, replayed: false });
  assert.deepEqual(await p2, { offset: 2, replayed: false });
  assert.deepEqual(await p3, { offset: 1, replayed: true });
  assert.equal(herald.pendingPublishes, 0);
  herald.close();
});

test('generated keys: a UUID with crypto.randomUUID, else 25 base36 characters; both fit the server rule', () => {
  assert.match(newIdempotencyKey(), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const desc = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  const real = globalThis.crypto;
  try {
    // a browser outside a secure context: getRandomValues but no randomUUID
    Object.defineProperty(globalThis, 'crypto', { value: { getRandomValues: (a) => real.getRandomValues(a) }, configurable: true });
    const keys = new Set(Array.from({ length: 100 }, () => newIdempotencyKey()));
    assert.equal(keys.size, 100);
    for (const k of keys) assert.match(k, /^[0-9a-z]{25}$/);
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
    assert.match(newIdempotencyKey(), /^[0-9a-z]{25}$/); // Math.random as the last resort
  } finally {
    Object.defineProperty(globalThis, 'crypto', desc);
  }
  assert.equal(idempotencyKeyError('abc-DEF_0.9:x'), null);
  assert.equal(idempotencyKeyError('x'.repeat(128)), null);
  assert.equal(idempotencyKeyError('x'.repeat(129)), 'too long (max 128 bytes)');
  assert.equal(idempotencyKeyError(''), 'must not be empty');
  assert.equal(idempotencyKeyError(7), 'must be a string');
  assert.equal(idempotencyKeyError('abc def'), "invalid character ' ' at 3; allowed: letters, digits and _-.:");
});

test('a bad caller key is refused before anything is sent (bad_request, the server’s wording)', async () => {
  const { WS, herald } = await connected();
  for (const [key, why] of [
    ['has space', /invalid character ' ' at 3/],
    ['', /must not be empty/],
    ['k'.repeat(129), /too long/],
    [42, /must be a string/],
  ]) {
    const err = await herald.publish('a', 'e', 1, { idempotencyKey: key }).catch((e) => e);
    assert.ok(err instanceof HeraldError);
    assert.equal(err.code, 'bad_request');
    assert.match(err.message, /^idempotency_key: /);
    assert.match(err.message, why);
  }
  assert.equal(WS.last.sentOfType('publish').length, 0);
  herald.close();
});

test('a publish in flight when the connection drops is sent again after the reconnect, with the same key and bytes', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 50 });
  herald.subscribe('room', { onEvent() {} });
  const first = WS.last;
  const sub1 = await until(() => first.sentOfType('subscribe')[0]);
  first.serverSend({ type: 'subscribed', id: sub1.id, channel: 'room', epoch: 'E', offset: 0, events: [] });
  const data = { text: 'hi', nested: { a: [1, 2] } };
  const p = herald.publish('room', 'msg', data);
  const sent1 = first.sentOfType('publish')[0];
  data.text = 'mutated after the call'; // the bytes sent again are those of the call
  await sleep(80); // longer than requestTimeoutMs: a keyed publish waits for its connection, not for a request timeout
  assert.equal(herald.pendingPublishes, 1);
  first.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  const second = WS.last;
  const sent2 = await until(() => second.sentOfType('publish')[0]);
  // resubscribe first, then the publish
  assert.deepEqual(second.sent.map((m) => m.type), ['connect', 'subscribe', 'publish']);
  assert.equal(sent2.idempotency_key, sent1.idempotency_key);
  assert.deepEqual({ ...sent2, id: 0 }, { ...sent1, id: 0 });
  assert.equal(sent2.data.text, 'hi');
  second.serverSend({ type: 'ack', id: sent2.id, offset: 7, replayed: true });
  assert.deepEqual(await p, { offset: 7, replayed: true });
  herald.close();
});

test('several drops: re-sent each time until acknowledged; a late ack on an old socket is ignored', async () => {
  const { WS, herald } = await connected();
  const p = herald.publish('a', 'e', { n: 1 });
  const keys = [];
  for (let i = 1; i <= 3; i++) {
    const sock = WS.last;
    keys.push((await until(() => sock.sentOfType('publish')[0])).idempotency_key);
    sock.serverClose(1006);
    await until(() => WS.instances.length === i + 1 && herald.state === 'connected');
  }
  const last = WS.last;
  const m = await until(() => last.sentOfType('publish')[0]);
  keys.push(m.idempotency_key);
  assert.equal(new Set(keys).size, 1);
  WS.instances[0].serverSend({ type: 'ack', id: WS.instances[0].sentOfType('publish')[0].id, offset: 99 }); // detached: ignored
  last.serverSend({ type: 'ack', id: m.id, offset: 3 });
  assert.deepEqual(await p, { offset: 3, replayed: false });
  herald.close();
});

test('refused by the server: rejects with its error (idempotency_conflict, validation_failed), not sent again', async () => {
  const { WS, herald } = await connected();
  const p1 = herald.publish('a', 'e', 1, { idempotencyKey: 'k1' });
  const p2 = herald.publish('a', 'e', 'x');
  const [m1, m2] = WS.last.sentOfType('publish');
  WS.last.serverSend({
    type: 'error',
    id: m1.id,
    code: 'idempotency_conflict',
    message: 'idempotency_key k1 was already used on a for another event or data (offset 4)',
  });
  WS.last.serverSend({ type: 'error', id: m2.id, code: 'validation_failed', message: 'data: must be object', details: [] });
  const e1 = await p1.catch((e) => e);
  const e2 = await p2.catch((e) => e);
  assert.equal(e1.code, 'idempotency_conflict');
  assert.match(e1.message, /offset 4/);
  assert.equal(e2.code, 'validation_failed');
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  await sleep(20);
  assert.equal(WS.last.sentOfType('publish').length, 0);
  assert.equal(herald.pendingPublishes, 0);
  herald.close();
});

test('unavailable (the server stored nothing): sent again with the same key and bytes after a backoff until acked; timeout and close still end it', async () => {
  const { WS, herald } = await connected();
  const p = herald.publish('a', 'e', { n: 1 });
  const first = WS.last.sentOfType('publish')[0];
  const refuse = (m) => WS.last.serverSend({ type: 'error', id: m.id, code: 'unavailable', message: 'storage unavailable, nothing was stored; retry later: storage queue is full' });
  refuse(first);
  assert.equal(herald.pendingPublishes, 1); // waiting for its next attempt, not rejected
  await until(() => WS.last.sentOfType('publish').length === 2);
  const second = WS.last.sentOfType('publish')[1];
  assert.notEqual(second.id, first.id);
  const { id: _a, ...rest1 } = first;
  const { id: _b, ...rest2 } = second;
  assert.deepEqual(rest2, rest1); // same key, same bytes
  refuse(second);
  await until(() => WS.last.sentOfType('publish').length === 3);
  const third = WS.last.sentOfType('publish')[2];
  WS.last.serverSend({ type: 'ack', id: third.id, offset: 7 });
  assert.deepEqual(await p, { offset: 7, replayed: false });
  assert.equal(herald.pendingPublishes, 0);
  herald.close();

  // Never anything but unavailable: publishTimeoutMs ends it with timeout.
  const t = await connected({ publishTimeoutMs: 150 });
  const pt = t.herald.publish('a', 'e', 2);
  const refuseAll = setInterval(() => {
    for (const m of t.WS.last.sentOfType('publish')) {
      if (!m.refused) {
        m.refused = true;
        t.WS.last.serverSend({ type: 'error', id: m.id, code: 'unavailable', message: 'storage unavailable' });
      }
    }
  }, 5);
  const et = await pt.catch((e) => e);
  clearInterval(refuseAll);
  assert.equal(et.code, 'timeout');
  assert.match(et.message, /refused as unavailable \d+ time/);
  assert.equal(t.herald.pendingPublishes, 0);
  t.herald.close();

  // close() while it waits for its next attempt: rejected with closed, never sent again.
  const c = await connected();
  const pc = c.herald.publish('a', 'e', 3);
  const m = c.WS.last.sentOfType('publish')[0];
  c.WS.last.serverSend({ type: 'error', id: m.id, code: 'unavailable', message: 'storage unavailable' });
  c.herald.close();
  assert.equal((await pc.catch((e) => e)).code, 'closed');
  await sleep(250);
  assert.equal(c.WS.last.sentOfType('publish').length, 1);
});

test('publishTimeoutMs: never acknowledged (in flight, or never connected) rejects with timeout, outcome unknown; late ack ignored', async () => {
  const { WS, herald } = await connected({ publishTimeoutMs: 60 });
  const t0 = Date.now();
  const p = herald.publish('a', 'e', 1, { idempotencyKey: 'late-1' });
  const m = WS.last.sentOfType('publish')[0];
  const err = await p.catch((e) => e);
  assert.ok(Date.now() - t0 >= 55);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'timeout');
  assert.match(err.message, /outcome is unknown/);
  assert.match(err.message, /within 60 ms/);
  assert.deepEqual(err.details, { idempotencyKey: 'late-1', channel: 'a' });
  WS.last.serverSend({ type: 'ack', id: m.id, offset: 1 }); // too late: ignored
  assert.equal(herald.pendingPublishes, 0);
  herald.close();

  // queued, the server never reachable
  const off = make({ publishTimeoutMs: 40 }, { autoOpen: false });
  off.herald.connect();
  const q = off.herald.publish('a', 'e', 1);
  assert.equal(off.herald.queuedPublishes, 1);
  const qerr = await q.catch((e) => e);
  assert.equal(qerr.code, 'timeout');
  assert.match(qerr.message, /never sent/);
  assert.equal(off.herald.queuedPublishes, 0);
  off.herald.close();
});

test('offline queue on by default: publish right after connect() (or before) goes out once connected', async () => {
  const { WS, herald } = make();
  const early = herald.publish('a', 'e', 0); // before connect(): state disconnected
  herald.connect();
  const p = herald.publish('a', 'e', 1);
  assert.equal(herald.state, 'connecting');
  assert.equal(herald.queuedPublishes, 2);
  await waitState(herald, 'connected');
  const ms = WS.last.sentOfType('publish');
  assert.deepEqual(ms.map((m) => m.data), [0, 1]);
  for (const m of ms) WS.last.serverSend({ type: 'ack', id: m.id, offset: m.data + 1 });
  assert.deepEqual(await early, { offset: 1, replayed: false });
  assert.deepEqual(await p, { offset: 2, replayed: false });
  herald.close();
});

test('offline queue bounds: count and bytes, queue_full with a clear message; false turns it off', async () => {
  const { herald } = make({ offlineQueue: { max: 3, maxBytes: 500 } });
  const ok = [herald.publish('a', 'e', 'x'.repeat(50)), herald.publish('a', 'e', 'y'.repeat(50))];
  const big = await herald.publish('a', 'e', 'z'.repeat(200)).catch((e) => e);
  assert.equal(big.code, 'queue_full');
  assert.match(big.message, /offline queue full: 2 publishes, \d+ bytes waiting \(offlineQueue: max 3, maxBytes 500\)/);
  ok.push(herald.publish('a', 'e', 1));
  const many = await herald.publish('a', 'e', 2).catch((e) => e);
  assert.equal(many.code, 'queue_full');
  assert.equal(herald.queuedPublishes, 3);
  herald.close();
  for (const p of ok) assert.equal((await p.catch((e) => e)).code, 'closed');

  for (const offlineQueue of [false, { max: 0 }]) {
    const r = make({ offlineQueue });
    r.herald.connect();
    const err = await r.herald.publish('a', 'e', 1).catch((e) => e);
    assert.equal(err.code, 'disconnected');
    assert.match(err.message, /offline queue is off/);
    r.herald.close();
  }
});

test('publishes in flight sent again are not refused by the queue bound; order kept: in flight first, then queued', async () => {
  const { WS, herald } = await connected({ offlineQueue: { max: 1 } });
  const inflight = [1, 2, 3].map((n) => herald.publish('a', 'e', n));
  WS.last.serverClose(1006);
  assert.equal(herald.queuedPublishes, 3);
  const over = await herald.publish('a', 'e', 4).catch((e) => e);
  assert.equal(over.code, 'queue_full'); // the bound counts what waits, but never drops what was already accepted
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  const ms = WS.last.sentOfType('publish');
  assert.deepEqual(ms.map((m) => m.data), [1, 2, 3]);
  for (const m of ms) WS.last.serverSend({ type: 'ack', id: m.id, offset: m.data });
  assert.deepEqual((await Promise.all(inflight)).map((r) => r.offset), [1, 2, 3]);
  herald.close();
});

test('ephemeral publishes: no key, not queued, not sent again (disconnected); a key on one is refused', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 2000 });
  const p = herald.publish('a', 'typing', { on: true }, { ephemeral: true });
  const m = WS.last.sentOfType('publish')[0];
  assert.equal(m.ephemeral, true);
  assert.equal('idempotency_key' in m, false);
  WS.last.serverClose(1006);
  assert.equal((await p.catch((e) => e)).code, 'disconnected');
  const offline = await herald.publish('a', 'typing', {}, { ephemeral: true }).catch((e) => e);
  assert.equal(offline.code, 'disconnected');
  assert.match(offline.message, /ephemeral publishes are not queued/);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  await sleep(20);
  assert.equal(WS.last.sentOfType('publish').length, 0);
  const keyed = await herald.publish('a', 'typing', {}, { ephemeral: true, idempotencyKey: 'k' }).catch((e) => e);
  assert.equal(keyed.code, 'bad_request');
  assert.equal(keyed.message, 'idempotency_key: not allowed on ephemeral events');
  herald.close();
});

test('close() rejects publishes in flight and queued with closed; a stop (4003) with its error', async () => {
  const { WS, herald } = await connected();
  const a = herald.publish('a', 'e', 1);
  herald.close();
  assert.equal((await a.catch((e) => e)).code, 'closed');
  assert.equal(herald.pendingPublishes, 0);

  const r = await connected();
  const b = r.herald.publish('a', 'e', 1);
  r.WS.last.serverClose(4003, 'banned');
  assert.equal((await b.catch((e) => e)).code, 'disconnected_by_server');
  assert.equal(WS.instances.length, 1);
});
