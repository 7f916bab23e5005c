// Unit tests of @herald/client against a fake WebSocket: connection states,
// id matching, timeouts, server error codes, dedupe by offset, recovery
// replies, 4001, close(), the token function, the ping watchdog and the
// offline queue.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Herald, HeraldError } from '../dist/index.js';
import { fakeSocketClass, sleep, until, waitState } from './support/fake-socket.mjs';

const FAST = { initialDelayMs: 5, maxDelayMs: 20, factor: 2, jitter: 0 };

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

// Answers the pending subscribe of `channel` on `sock`.
async function answerSubscribe(sock, channel, reply) {
  const req = await until(() => sock.sentOfType('subscribe').find((m) => m.channel === channel), 2000, `subscribe ${channel}`);
  sock.serverSend({ type: 'subscribed', id: req.id, channel, events: [], ...reply });
  return req;
}

const ev = (channel, offset, extra = {}) => ({ type: 'event', channel, event: 'e', ...(offset === null ? {} : { offset }), ts: 1, data: { n: offset }, ...extra });

test('states go connecting -> connected -> disconnected -> connecting -> connected -> closed, with events', async () => {
  const { WS, herald } = make();
  assert.equal(herald.state, 'disconnected');
  const seen = [];
  const off = herald.on('state', (s, prev) => seen.push(`${prev}>${s}`));
  const infos = [];
  herald.on('connected', (i) => infos.push(i));
  herald.connect();
  await waitState(herald, 'connected');
  assert.equal(WS.last.sent[0].type, 'connect');
  assert.equal(herald.clientId, 'c1');
  WS.last.serverClose(1001, 'going away');
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  herald.close();
  off();
  herald.connect(); // listener removed: not recorded
  herald.close();
  assert.deepEqual(seen, [
    'disconnected>connecting',
    'connecting>connected',
    'connected>disconnected',
    'disconnected>connecting',
    'connecting>connected',
    'connected>closed',
  ]);
  assert.deepEqual(infos.map((i) => i.client), ['c1', 'c2']);
  assert.deepEqual(WS.instances[1].closed, { code: 1000, reason: 'client closed' });
});

test('replies are matched by id, whatever their order', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 2000 });
  const p1 = herald.publish('a', 'e', 1);
  const p2 = herald.publish('a', 'e', 2);
  const p3 = herald.history('a', { limit: 2, after: 1 });
  const [m1, m2, m3] = WS.last.sent.slice(1);
  assert.equal(m3.type, 'history');
  assert.equal(m3.limit, 2);
  assert.equal(m3.after, 1);
  assert.equal('before' in m3, false);
  assert.equal(new Set([m1.id, m2.id, m3.id]).size, 3);
  WS.last.serverSend({ type: 'history', id: m3.id, channel: 'a', epoch: 'E', offset: 9, events: [] });
  WS.last.serverSend({ type: 'ack', id: m2.id, offset: 8 });
  WS.last.serverSend({ type: 'ack', id: 12345, offset: 1 }); // unknown id: ignored
  WS.last.serverSend({ type: 'ack', id: m1.id, offset: 7 });
  assert.deepEqual(await p1, { offset: 7, replayed: false });
  assert.deepEqual(await p2, { offset: 8, replayed: false });
  assert.deepEqual(await p3, { channel: 'a', epoch: 'E', offset: 9, events: [] });
  herald.close();
});

test('ephemeral publish sends ephemeral: true and resolves without offset', async () => {
  const { WS, herald } = await connected();
  const p = herald.publish('a', 'typing', { on: true }, { ephemeral: true });
  const m = WS.last.sent.at(-1);
  assert.equal(m.ephemeral, true);
  WS.last.serverSend({ type: 'ack', id: m.id });
  assert.deepEqual(await p, {});
  herald.close();
});

test('a request without reply rejects with code timeout; its late reply is ignored', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 50 });
  const t0 = Date.now();
  const err = await herald.history('a').catch((e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'timeout');
  assert.ok(Date.now() - t0 >= 45);
  WS.last.serverSend({ type: 'ack', id: WS.last.sent.at(-1).id, offset: 1 });
  assert.equal(herald.state, 'connected');
  herald.close();
});

test('server errors reject with the server code, message and details', async () => {
  const { WS, herald } = await connected();
  const p = herald.publish('bad channel', 'e', 1);
  const m = WS.last.sent.at(-1);
  WS.last.serverSend({ type: 'error', id: m.id, code: 'validation_failed', message: 'data: nope', details: [{ pointer: '/x' }] });
  const err = await p.catch((e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'validation_failed');
  assert.equal(err.message, 'data: nope');
  assert.deepEqual(err.details, [{ pointer: '/x' }]);
  herald.close();
});

test('pending requests reject with disconnected when the socket drops', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 5000 });
  const p = herald.history('a');
  WS.last.serverClose(1006);
  const err = await p.catch((e) => e);
  assert.equal(err.code, 'disconnected');
  herald.close();
});

test('history, presence and publish reject at once with disconnected when not connected (no queue)', async () => {
  const { herald } = make({ offlineQueue: false });
  for (const p of [herald.publish('a', 'e', 1), herald.history('a'), herald.presence('a')]) {
    const err = await p.catch((e) => e);
    assert.equal(err.code, 'disconnected');
  }
  herald.close();
  assert.equal((await herald.publish('a', 'e', 1).catch((e) => e)).code, 'closed');
});

test('subscribe: events delivered in order, duplicates by offset dropped, ephemeral passed through', async () => {
  const { WS, herald } = await connected();
  const got = [];
  const sub = herald.subscribe('room', { onEvent: (e) => got.push(e.offset ?? 'eph') });
  const req = await answerSubscribe(WS.last, 'room', { epoch: 'E1', offset: 5 });
  assert.equal('recover' in req, false);
  await sub.ready;
  const s = WS.last;
  for (const o of [6, 7, 7, 6, null, 8, 5, 8, 9]) s.serverSend(ev('room', o));
  s.serverSend(ev('other', 10)); // not subscribed: ignored
  assert.deepEqual(got, [6, 7, 'eph', 8, 9]);
  assert.equal(sub.duplicatesDropped, 4);
  assert.equal(sub.epoch, 'E1');
  assert.equal(sub.offset, 9);
  assert.throws(() => herald.subscribe('room', { onEvent() {} }), (e) => e.code === 'already_subscribed');
  herald.close();
});

test('subscribe with events: only those names are delivered, the others still advance the recovery offset; subscribed events', async () => {
  const { WS, herald } = await connected();
  const got = [];
  const subscribed = [];
  herald.on('subscribed', (i) => subscribed.push(i));
  const sub = herald.subscribe('room', { events: ['keep'], onEvent: (e) => got.push(e.offset) });
  await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 0 });
  assert.deepEqual(subscribed, [{ channel: 'room', epoch: 'E', offset: 0 }]);
  for (const [o, name] of [[1, 'keep'], [2, 'skip'], [3, 'keep'], [4, 'skip']]) WS.last.serverSend(ev('room', o, { event: name }));
  assert.deepEqual(got, [1, 3]);
  assert.equal(sub.offset, 4);
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  const req = await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 4, recovered: true, events: [] });
  assert.deepEqual(req.recover, { epoch: 'E', offset: 4 });
  assert.deepEqual(subscribed.at(-1), { channel: 'room', epoch: 'E', offset: 4 });
  herald.close();
});

test('subscribe with history delivers the history events first', async () => {
  const { WS, herald } = await connected();
  const got = [];
  herald.subscribe('room', { history: 2, onEvent: (e) => got.push(e.offset) });
  const req = await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 4, events: [ev('room', 3), ev('room', 4)] });
  assert.equal(req.history, 2);
  WS.last.serverSend(ev('room', 5));
  assert.deepEqual(got, [3, 4, 5]);
  herald.close();
});

test('after a reconnect: resubscribe with recover, missed events in order, duplicates dropped, onRecovered', async () => {
  const { WS, herald } = await connected();
  const got = [];
  const recovered = [];
  herald.on('recovered', (i) => recovered.push({ ...i, via: 'event' }));
  herald.subscribe('room', { onEvent: (e) => got.push(e.offset), onRecovered: (i) => recovered.push(i) });
  await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 0 });
  WS.last.serverSend(ev('room', 1));
  WS.last.serverSend(ev('room', 2));
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  const req = await answerSubscribe(WS.last, 'room', {
    epoch: 'E',
    offset: 4,
    recovered: true,
    events: [ev('room', 2), ev('room', 3), ev('room', 4)],
  });
  assert.deepEqual(req.recover, { epoch: 'E', offset: 2 });
  WS.last.serverSend(ev('room', 4));
  WS.last.serverSend(ev('room', 5));
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  assert.deepEqual(recovered, [
    { channel: 'room', epoch: 'E', offset: 4, missed: 3 },
    { channel: 'room', epoch: 'E', offset: 4, missed: 3, via: 'event' },
  ]);
  herald.close();
});

test('a recovery reply followed by live events in the same socket read is processed first', async () => {
  const { WS, herald } = await connected();
  const got = [];
  herald.subscribe('room', { onEvent: (e) => got.push(e.offset) });
  await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 0 });
  WS.last.serverSend(ev('room', 1));
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  const s = WS.last;
  const req = await until(() => s.sentOfType('subscribe')[0]);
  // No await between these: like several WebSocket messages parsed from one TCP read.
  s.serverSend({ type: 'subscribed', id: req.id, channel: 'room', epoch: 'E', offset: 3, recovered: true, events: [ev('room', 2), ev('room', 3)] });
  s.serverSend(ev('room', 4));
  s.serverSend(ev('room', 5));
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  herald.close();
});

test('recovered: false calls onRecoveryFailed and emits recoveryFailed; the new epoch starts over', async () => {
  const { WS, herald } = await connected();
  const got = [];
  const failed = [];
  herald.on('recoveryFailed', (i) => failed.push(i));
  herald.subscribe('room', { onEvent: (e) => got.push(e.offset), onRecoveryFailed: (i) => failed.push(i) });
  await answerSubscribe(WS.last, 'room', { epoch: 'OLD', offset: 7 });
  WS.last.serverSend(ev('room', 8));
  WS.last.serverClose(1001);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  const req = await answerSubscribe(WS.last, 'room', { epoch: 'NEW', offset: 0, recovered: false });
  assert.deepEqual(req.recover, { epoch: 'OLD', offset: 8 });
  WS.last.serverSend(ev('room', 1));
  assert.deepEqual(got, [8, 1]);
  const info = { channel: 'room', epoch: 'NEW', offset: 0, previous: { epoch: 'OLD', offset: 8 } };
  assert.deepEqual(failed, [info, info]);
  herald.close();
});

test('a refused subscribe rejects ready, calls onError and ends the subscription', async () => {
  const { WS, herald } = await connected();
  const errors = [];
  herald.on('error', (e) => errors.push(e.code));
  const sub = herald.subscribe('bad channel', { onEvent() {}, onError: (e) => errors.push(`cb:${e.code}`) });
  const req = await until(() => WS.last.sentOfType('subscribe')[0]);
  WS.last.serverSend({ type: 'error', id: req.id, code: 'bad_request', message: 'channel: invalid character' });
  const err = await sub.ready.catch((e) => e);
  assert.equal(err.code, 'bad_request');
  assert.deepEqual(errors, ['cb:bad_request', 'bad_request']);
  herald.subscribe('bad channel', { onEvent() {} }); // the channel is free again
  herald.close();
});

test('unsubscribe sends unsubscribe and stops delivery at once', async () => {
  const { WS, herald } = await connected();
  const got = [];
  const sub = herald.subscribe('room', { onEvent: (e) => got.push(e.offset) });
  await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 0 });
  WS.last.serverSend(ev('room', 1));
  sub.unsubscribe();
  WS.last.serverSend(ev('room', 2));
  assert.deepEqual(got, [1]);
  assert.equal(WS.last.sentOfType('unsubscribe')[0].channel, 'room');
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  await sleep(20);
  assert.equal(WS.last.sentOfType('subscribe').length, 0, 'not resubscribed');
  herald.close();
});

test('close code 4001 is not retried: state closed and an unauthorized error', async () => {
  const { WS, herald } = await connected({ offlineQueue: { max: 5 } });
  const errors = [];
  herald.on('error', (e) => errors.push(e));
  WS.last.serverClose(4001, 'bad token');
  assert.equal(herald.state, 'closed');
  await sleep(100); // many backoff periods
  assert.equal(WS.instances.length, 1);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'unauthorized');
  assert.equal((await herald.publish('a', 'e', 1).catch((e) => e)).code, 'closed');
});

test('no reconnect after close(), even with a retry scheduled', async () => {
  const { WS, herald } = await connected({ reconnect: { initialDelayMs: 30, maxDelayMs: 30, jitter: 0 } });
  WS.last.serverClose(1006);
  assert.equal(herald.state, 'disconnected');
  herald.close();
  await sleep(80);
  assert.equal(WS.instances.length, 1);
  assert.equal(herald.state, 'closed');
});

test('reconnect delays follow the backoff while the server is unreachable', async () => {
  const { WS, herald } = make({ reconnect: { initialDelayMs: 10, maxDelayMs: 40, factor: 2, jitter: 0 } }, { autoOpen: false });
  const times = [];
  const origPush = WS.instances.push.bind(WS.instances);
  WS.instances.push = (s) => {
    times.push(Date.now());
    setTimeout(() => s.serverClose(1006), 0); // connection refused
    return origPush(s);
  };
  herald.connect();
  await until(() => times.length >= 6, 3000, '6 attempts');
  herald.close();
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  // expected 10, 20, 40, 40, 40 (timers may fire late, never early)
  [10, 20, 40, 40, 40].forEach((d, i) => assert.ok(gaps[i] >= d - 2, `gap ${i}: ${gaps[i]} < ${d}`));
});

test('the token function is called on every (re)connect and sent in connect', async () => {
  let n = 0;
  const { WS, herald } = await connected({ token: async () => `t${++n}` });
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  assert.deepEqual(WS.instances.map((s) => s.sent[0]), [
    { type: 'connect', id: WS.instances[0].sent[0].id, token: 't1' },
    { type: 'connect', id: WS.instances[1].sent[0].id, token: 't2' },
  ]);
  herald.close();
  const s = await connected({ token: 'fixed' });
  assert.equal(s.WS.last.sent[0].token, 'fixed');
  s.herald.close();
});

test('a failing token function is an error and a retry, not a crash', async () => {
  let n = 0;
  const errors = [];
  const { WS, herald } = make({
    token: () => {
      if (++n === 1) throw new Error('no session');
      return 'ok';
    },
  });
  herald.on('error', (e) => errors.push(e.code));
  herald.connect();
  await waitState(herald, 'connected');
  assert.deepEqual(errors, ['token_failed']);
  assert.equal(WS.instances.length, 1);
  herald.close();
});

test('pings are answered with pong; silence for ping + pingTimeoutMs reconnects', async () => {
  const { WS, herald } = await connected({ pingTimeoutMs: 60 }, { ping: 0.05 });
  const s1 = WS.last;
  // Keep it alive with pings for 300 ms (> 110 ms watchdog).
  for (let i = 0; i < 10; i++) {
    await sleep(30);
    s1.serverSend({ type: 'ping' });
  }
  assert.equal(WS.instances.length, 1);
  assert.equal(s1.sentOfType('pong').length, 10);
  assert.deepEqual(s1.sentOfType('pong')[0], { type: 'pong' });
  const t0 = Date.now();
  const disconnected = [];
  herald.on('disconnected', (i) => disconnected.push(i));
  await until(() => WS.instances.length === 2, 2000, 'a new socket');
  const dead = Date.now() - t0;
  assert.ok(dead >= 80 && dead < 1000, `noticed after ${dead} ms`);
  assert.deepEqual(disconnected, [{ code: 1006, reason: 'ping timeout' }]);
  assert.equal(s1.closed.code, 4000);
  await waitState(herald, 'connected');
  herald.close();
});

test('a connect that never opens times out and is retried', async () => {
  const { WS, herald } = make({ connectTimeoutMs: 30 }, { autoOpen: false });
  herald.connect();
  await until(() => WS.instances.length >= 2, 2000);
  WS.last.open();
  await waitState(herald, 'connected');
  herald.close();
});

test('offline queue: bounded; flushed in order after resubscribing', async () => {
  const { WS, herald } = make({ offlineQueue: { max: 2 }, requestTimeoutMs: 2000 });
  herald.subscribe('room', { onEvent() {} });
  const p1 = herald.publish('room', 'e', 1);
  const p2 = herald.publish('room', 'e', 2);
  assert.equal(herald.queuedPublishes, 2);
  const full = await herald.publish('room', 'e', 3).catch((e) => e);
  assert.equal(full.code, 'queue_full');
  herald.connect();
  await waitState(herald, 'connected');
  const sent = WS.last.sent.map((m) => m.type + (m.data !== undefined ? m.data : ''));
  assert.deepEqual(sent, ['connect', 'subscribe', 'publish1', 'publish2']);
  for (const m of WS.last.sentOfType('publish')) WS.last.serverSend({ type: 'ack', id: m.id, offset: m.data * 10 });
  assert.deepEqual(await Promise.all([p1, p2]), [{ offset: 10, replayed: false }, { offset: 20, replayed: false }]);
  assert.equal(herald.queuedPublishes, 0);
  herald.close();
});

test('close() rejects queued publishes with closed', async () => {
  const { herald } = make({ offlineQueue: { max: 2 } });
  const p = herald.publish('room', 'e', 1);
  herald.close();
  assert.equal((await p.catch((e) => e)).code, 'closed');
});

test('a throwing onEvent is reported as an error event and delivery goes on', async () => {
  const { WS, herald } = await connected();
  const errors = [];
  herald.on('error', (e) => errors.push(e.code));
  const got = [];
  herald.subscribe('room', {
    onEvent: (e) => {
      got.push(e.offset);
      if (e.offset === 1) throw new Error('app bug');
    },
  });
  await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 0 });
  WS.last.serverSend(ev('room', 1));
  WS.last.serverSend(ev('room', 2));
  assert.deepEqual(got, [1, 2]);
  assert.deepEqual(errors, ['listener_failed']);
  herald.close();
});

test('without a WebSocket implementation connect() says what to pass; making the client does not throw (server-side rendering)', () => {
  const saved = globalThis.WebSocket;
  try {
    delete globalThis.WebSocket;
    const herald = new Herald({ url: 'ws://x/ws' });
    assert.equal(herald.state, 'disconnected');
    assert.throws(() => herald.connect(), /no global WebSocket; pass one/);
  } finally {
    if (saved) globalThis.WebSocket = saved;
  }
});

test('unsubscribed resubscribe (engine redis lost the order): subscribe again with recover from the last event, nothing missed or repeated', async () => {
  const { WS, herald } = await connected();
  const got = [];
  const ended = [];
  const errors = [];
  herald.on('unsubscribed', (i) => ended.push(i));
  herald.on('error', (e) => errors.push(e));
  const sub = herald.subscribe('room:a', { onEvent: (e) => got.push(e.offset) });
  await answerSubscribe(WS.last, 'room:a', { epoch: 'E', offset: 2 });
  await sub.ready;
  WS.last.serverSend(ev('room:a', 3));
  WS.last.serverSend({ type: 'unsubscribed', channel: 'room:a', reason: 'resubscribe' });
  await until(() => WS.last.sentOfType('subscribe').length === 2, 2000, 'second subscribe');
  const again = WS.last.sentOfType('subscribe')[1];
  assert.deepEqual(again.recover, { epoch: 'E', offset: 3 });
  WS.last.serverSend({ type: 'subscribed', id: again.id, channel: 'room:a', epoch: 'E', offset: 5, recovered: true, events: [ev('room:a', 4), ev('room:a', 5)] });
  WS.last.serverSend(ev('room:a', 6));
  assert.deepEqual(got, [3, 4, 5, 6]);
  assert.deepEqual(ended, [{ channel: 'room:a', reason: 'resubscribe' }]);
  assert.deepEqual(errors, []);
  herald.close();
});
