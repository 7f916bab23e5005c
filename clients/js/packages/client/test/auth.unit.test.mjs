// Unit tests of the authentication side of @herald/client against the fake
// WebSocket: the connection token in `connect`, `herald.user`, `refresh`
// before expiry, token_expired / 4001 (one fresh token, then a terminal
// `closed` with `closeError`), 4003, 4029 with backoff, subscription tokens
// (`getToken`) for subscribe and sub_refresh, `unsubscribed` token_expired /
// kicked, server-side subscriptions (attach without subscribe, history
// catch-up after a reconnect), rate_limited's retryAfterMs; and the pure
// helpers of token.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Herald, HeraldError } from '../dist/index.js';
import { decodeTokenPayload, refreshDelay, tokenChannels, tokenExpiry } from '../dist/token.js';
import { fakeJwt, fakeSocketClass, nowSeconds, sleep, until, waitState } from './support/fake-socket.mjs';

const FAST = { initialDelayMs: 5, maxDelayMs: 20, factor: 2, jitter: 0 };

function make(opts = {}, sockOpts = {}) {
  const WS = fakeSocketClass(sockOpts);
  const herald = new Herald({ url: 'ws://fake/ws', WebSocket: WS, reconnect: FAST, requestTimeoutMs: 500, ...opts });
  const errors = [];
  herald.on('error', (e) => errors.push(e));
  return { WS, herald, errors };
}

const ev = (channel, offset) => ({ type: 'event', channel, event: 'e', offset, ts: 1, data: { n: offset } });

async function answerSubscribe(sock, channel, reply) {
  const req = await until(() => sock.sentOfType('subscribe').find((m) => m.channel === channel), 2000, `subscribe ${channel}`);
  sock.serverSend({ type: 'subscribed', id: req.id, channel, events: [], ...reply });
  return req;
}

// The server refuses the token of the next connect: error with the connect's id, then close 4001.
function refuse(WS, message = 'bad signature') {
  WS.onConnect = (msg, sock) => {
    setTimeout(() => {
      sock.serverSend({ type: 'error', id: msg.id, code: 'unauthorized', message });
      sock.serverClose(4001, message);
    }, 0);
    return null;
  };
}

test('token.ts: payload decoding (no verification), exp, channels; refreshDelay', () => {
  const t = fakeJwt({ sub: 'ann', exp: 2000000000, channels: ['news', 7, 'dm:ann'], info: { name: 'Ann ✓' } });
  assert.deepEqual(decodeTokenPayload(t), { sub: 'ann', exp: 2000000000, channels: ['news', 7, 'dm:ann'], info: { name: 'Ann ✓' } });
  assert.equal(tokenExpiry(t), 2000000000);
  assert.deepEqual(tokenChannels(t), ['news', 'dm:ann']);
  for (const bad of ['opaque', 'a.b', 'a.!!.c', `x.${Buffer.from('[1]').toString('base64url')}.y`, 'x.e30.y.z']) {
    assert.equal(decodeTokenPayload(bad), null, bad);
    assert.equal(tokenExpiry(bad), null);
    assert.deepEqual(tokenChannels(bad), []);
  }
  assert.equal(tokenExpiry(fakeJwt({ sub: 'x' })), null);
  assert.equal(tokenExpiry(fakeJwt({ exp: '1' })), null);
  // 85% or 30 s before, whichever is sooner; never before half; 1 s when already expired
  assert.equal(refreshDelay(3600_000), 3060_000);
  assert.equal(refreshDelay(120_000), 90_000);
  assert.equal(refreshDelay(60_000), 30_000);
  assert.equal(refreshDelay(10_000), 5000);
  assert.equal(refreshDelay(0), 1000);
  assert.equal(refreshDelay(-5000), 1000);
  assert.equal(refreshDelay(30 * 86400_000), 2_147_483_647); // a 30-day token: the timer's limit, not an overflow
});

test('the token is sent in connect (never in the URL); connected.user and expires are exposed', async () => {
  const { WS, herald } = make({ token: 'tok-1' });
  WS.onConnect = () => ({ user: 'ann', expires: 2000000000 });
  const infos = [];
  herald.on('connected', (i) => infos.push(i));
  herald.connect();
  await waitState(herald, 'connected');
  assert.equal(WS.last.url, 'ws://fake/ws');
  assert.deepEqual(WS.last.sent[0], { type: 'connect', id: WS.last.sent[0].id, token: 'tok-1' });
  assert.equal(herald.user, 'ann');
  assert.equal(herald.expires, 2000000000);
  assert.deepEqual(infos, [{ client: 'c1', ping: 25, user: 'ann', expires: 2000000000 }]);
  WS.last.serverClose(1006);
  assert.equal(herald.user, null);
  herald.close();
});

test('the token function is called on every connect, also after each drop', async () => {
  let n = 0;
  const { WS, herald } = make({ token: () => `t${++n}` });
  herald.connect();
  for (let i = 1; i <= 3; i++) {
    await until(() => WS.instances.length === i && herald.state === 'connected');
    if (i < 3) WS.last.serverClose(1006);
  }
  assert.deepEqual(WS.instances.map((s) => s.sent[0].token), ['t1', 't2', 't3']);
  assert.equal(n, 3);
  herald.close();
});

test('pings are not answered before connected (the server refuses anything before connect)', async () => {
  const { WS, herald } = make();
  WS.onConnect = () => null;
  herald.connect();
  const s = await until(() => WS.last?.sent.length === 1 && WS.last);
  s.serverSend({ type: 'ping' });
  s.serverSend({ type: 'connected', id: s.sent[0].id, client: 'c1', ping: 25, version: '1' });
  s.serverSend({ type: 'ping' });
  assert.deepEqual(s.sent.map((m) => m.type), ['connect', 'pong']);
  herald.close();
});

test('refresh is sent before the token expires, with a new token from the function; refreshed reschedules', async () => {
  let n = 0;
  const { WS, herald, errors } = make({ token: () => `t${++n}` });
  const t0 = Date.now();
  WS.onConnect = () => ({ user: 'ann', expires: (t0 + 1200) / 1000 });
  const refreshed = [];
  herald.on('refreshed', (i) => refreshed.push(i));
  herald.connect();
  await waitState(herald, 'connected');
  const s = WS.last;
  const r1 = await until(() => s.sentOfType('refresh')[0], 3000, 'refresh');
  const at = Date.now() - t0;
  assert.ok(at >= 550 && at < 1200, `refresh sent after ${at} ms (expected ~600, before expiry)`);
  assert.equal(r1.token, 't2');
  assert.equal(typeof r1.id, 'number');
  const next = (Date.now() + 800) / 1000;
  s.serverSend({ type: 'refreshed', id: r1.id, expires: next });
  assert.deepEqual(refreshed, [{ expires: next }]);
  assert.equal(herald.expires, next);
  const r2 = await until(() => s.sentOfType('refresh')[1], 3000, 'second refresh');
  assert.equal(r2.token, 't3');
  // A refused refresh keeps the connection; it is reported and tried again later.
  s.serverSend({ type: 'error', id: r2.id, code: 'unauthorized', message: 'refresh: token for another user' });
  assert.equal(herald.state, 'connected');
  assert.deepEqual(errors.map((e) => e.code), ['unauthorized']);
  assert.equal(WS.instances.length, 1);
  herald.close();
});

test('no refresh with a string token, nor without expires', async () => {
  const a = make({ token: 'static' });
  a.WS.onConnect = () => ({ expires: (Date.now() + 300) / 1000 });
  a.herald.connect();
  const b = make({ token: () => 'fn' });
  b.herald.connect();
  await waitState(a.herald, 'connected');
  await waitState(b.herald, 'connected');
  await sleep(400);
  assert.equal(a.WS.last.sentOfType('refresh').length, 0);
  assert.equal(b.WS.last.sentOfType('refresh').length, 0);
  a.herald.close();
  b.herald.close();
});

test('token_expired then 4001: a new token from the function and one reconnect; subscriptions resume', async () => {
  let n = 0;
  const { WS, herald, errors } = make({ token: () => `t${++n}` });
  WS.onConnect = (msg) => ({ user: 'ann', expires: nowSeconds() + 3600 });
  herald.connect();
  await waitState(herald, 'connected');
  const got = [];
  herald.subscribe('room', { onEvent: (e) => got.push(e.offset) });
  await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 0 });
  WS.last.serverSend(ev('room', 1));
  const s1 = WS.last;
  s1.serverSend({ type: 'error', code: 'token_expired', message: 'token expired' });
  s1.serverClose(4001, 'token expired');
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  assert.equal(WS.last.sent[0].token, 't2');
  assert.deepEqual(errors.map((e) => e.code), ['token_expired']);
  assert.ok(errors[0] instanceof HeraldError);
  const req = await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 2, recovered: true, events: [ev('room', 2)] });
  assert.deepEqual(req.recover, { epoch: 'E', offset: 1 });
  assert.deepEqual(got, [1, 2]);
  assert.equal(herald.closeError, null);
  // Accepted again: a later expiry gets its own retry.
  WS.last.serverSend({ type: 'error', code: 'token_expired', message: 'token expired' });
  WS.last.serverClose(4001, 'token expired');
  await until(() => WS.instances.length === 3 && herald.state === 'connected');
  herald.close();
});

test('refused again after the retry: terminal closed with closeError, no reconnect loop', async () => {
  let n = 0;
  const { WS, herald, errors } = make({ token: () => `t${++n}`, offlineQueue: { max: 5 } });
  herald.connect();
  await waitState(herald, 'connected');
  refuse(WS, 'token expired');
  const states = [];
  herald.on('state', (st) => states.push(st));
  WS.last.serverSend({ type: 'error', code: 'token_expired', message: 'token expired' });
  WS.last.serverClose(4001, 'token expired');
  await waitState(herald, 'closed');
  await sleep(100); // many backoff periods
  assert.equal(WS.instances.length, 2);
  assert.deepEqual(states, ['disconnected', 'connecting', 'closed']);
  assert.equal(herald.closeError.code, 'unauthorized');
  assert.equal(herald.closeError.message, 'token expired');
  assert.deepEqual(errors.map((e) => e.code), ['token_expired', 'unauthorized']);
  assert.equal((await herald.publish('a', 'e', 1).catch((e) => e)).code, 'closed');
  assert.equal(n, 2);
  // connect() starts over (e.g. after signing in again).
  WS.onConnect = null;
  herald.connect();
  await waitState(herald, 'connected');
  assert.equal(herald.closeError, null);
  herald.close();
});

test('a refused first connect: one retry with a function token, none with a string', async () => {
  let n = 0;
  const a = make({ token: () => `t${++n}` });
  refuse(a.WS);
  a.herald.connect();
  await waitState(a.herald, 'closed');
  const b = make({ token: 'static' });
  refuse(b.WS);
  b.herald.connect();
  await waitState(b.herald, 'closed');
  await sleep(100);
  assert.equal(a.WS.instances.length, 2);
  assert.equal(b.WS.instances.length, 1);
  for (const { herald, errors } of [a, b]) {
    assert.equal(herald.closeError.code, 'unauthorized');
    assert.equal(herald.closeError.message, 'bad signature');
    assert.equal(errors.at(-1), herald.closeError);
  }
});

test('close 4003: disconnected by the server, terminal, no reconnect', async () => {
  const { WS, herald } = make({ token: () => 't' });
  herald.connect();
  await waitState(herald, 'connected');
  const disconnected = [];
  herald.on('disconnected', (i) => disconnected.push(i));
  WS.last.serverClose(4003, 'banned by admin');
  assert.equal(herald.state, 'closed');
  await sleep(100);
  assert.equal(WS.instances.length, 1);
  assert.deepEqual(disconnected, [{ code: 4003, reason: 'banned by admin' }]);
  assert.equal(herald.closeError.code, 'disconnected_by_server');
  assert.match(herald.closeError.message, /banned by admin/);
  assert.deepEqual(herald.closeError.details, { code: 4003, reason: 'banned by admin' });
});

test('close 4500-4999 (a hook\'s "do not come back") is terminal like 4003; 4000-4499 reconnects', async () => {
  const stopped = make({ token: () => 't' });
  stopped.herald.connect();
  await waitState(stopped.herald, 'connected');
  stopped.WS.last.serverClose(4500, 'banned');
  assert.equal(stopped.herald.state, 'closed');
  await sleep(100);
  assert.equal(stopped.WS.instances.length, 1);
  assert.equal(stopped.herald.closeError.code, 'disconnected_by_server');
  assert.deepEqual(stopped.herald.closeError.details, { code: 4500, reason: 'banned' });

  const back = make({ token: () => 't', reconnect: { initialDelayMs: 10, maxDelayMs: 50, factor: 2, jitter: 0 } });
  back.herald.connect();
  await waitState(back.herald, 'connected');
  back.WS.last.serverClose(4499, 'come back later');
  assert.equal(back.herald.state, 'disconnected');
  await waitState(back.herald, 'connected');
  assert.equal(back.WS.instances.length, 2);
  assert.equal(back.herald.closeError, null);
  back.herald.close();
});

test('close 4029: reconnect, backing off further at each one, at least retry_after_ms', async () => {
  const { WS, herald, errors } = make({ reconnect: { initialDelayMs: 10, maxDelayMs: 1000, factor: 2, jitter: 0 } });
  herald.connect();
  await waitState(herald, 'connected');
  const p = herald.publish('a', 'e', 1);
  const m = WS.last.sentOfType('publish')[0];
  WS.last.serverSend({ type: 'error', id: m.id, code: 'rate_limited', message: 'slow down', retry_after_ms: 120 });
  const err = await p.catch((e) => e);
  assert.equal(err.code, 'rate_limited');
  assert.equal(err.retryAfterMs, 120);
  let t = Date.now();
  WS.last.serverClose(4029, 'rate limited');
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  const first = Date.now() - t;
  assert.ok(first >= 115, `waited ${first} ms, the server asked 120`);
  t = Date.now();
  WS.last.serverClose(4029, 'rate limited');
  await until(() => WS.instances.length === 3 && herald.state === 'connected');
  const second = Date.now() - t;
  // 2nd consecutive 4029: backoff attempt 2 -> 40 ms (without retry_after_ms this time)
  assert.ok(second >= 38, `waited ${second} ms`);
  assert.equal(herald.closeError, null);
  assert.deepEqual(errors.map((e) => e.code), []);
  herald.close();
});

test('rate_limited over HTTP-shaped bodies too: HeraldError.fromReply reads retry_after_ms', () => {
  const e = HeraldError.fromReply({ code: 'rate_limited', message: 'm', retry_after_ms: 250 }, 429);
  assert.equal(e.retryAfterMs, 250);
  assert.equal(e.status, 429);
  assert.equal(HeraldError.fromReply({ code: 'x', retry_after_ms: 'no' }).retryAfterMs, undefined);
});

test('getToken: called for subscribe (token sent), then sub_refresh before the token expires', async () => {
  const { WS, herald, errors } = make();
  herald.connect();
  await waitState(herald, 'connected');
  const calls = [];
  const t0 = Date.now();
  const sub = herald.subscribe('dm:ann', {
    onEvent() {},
    getToken: async (channel) => {
      calls.push(channel);
      return fakeJwt({ sub: 'ann', channel, exp: (t0 + 1200 * calls.length) / 1000, n: calls.length });
    },
  });
  const req = await answerSubscribe(WS.last, 'dm:ann', { epoch: 'E', offset: 0 });
  await sub.ready;
  assert.equal(decodeTokenPayload(req.token).n, 1);
  assert.deepEqual(calls, ['dm:ann']);
  const r = await until(() => WS.last.sentOfType('sub_refresh')[0], 3000, 'sub_refresh');
  const at = Date.now() - t0;
  assert.ok(at >= 550 && at < 1200, `sub_refresh after ${at} ms`);
  assert.equal(r.channel, 'dm:ann');
  assert.equal(decodeTokenPayload(r.token).n, 2);
  WS.last.serverSend({ type: 'sub_refreshed', id: r.id, channel: 'dm:ann', expires: (Date.now() + 10_000) / 1000 });
  assert.deepEqual(errors, []);
  assert.equal(WS.last.sentOfType('subscribe').length, 1);
  herald.close();
});

test('getToken failing ends the subscription with token_failed', async () => {
  const { WS, herald, errors } = make();
  herald.connect();
  await waitState(herald, 'connected');
  const cb = [];
  const sub = herald.subscribe('dm:ann', { onEvent() {}, onError: (e) => cb.push(e.code), getToken: () => Promise.reject(new Error('403 from backend')) });
  const err = await sub.ready.catch((e) => e);
  assert.equal(err.code, 'token_failed');
  assert.match(err.message, /403 from backend/);
  assert.deepEqual(cb, ['token_failed']);
  assert.deepEqual(errors.map((e) => e.code), ['token_failed']);
  assert.equal(WS.last.sentOfType('subscribe').length, 0);
  herald.close();
});

test('a refused subscription token: forbidden ends the subscription, the connection stays', async () => {
  const { WS, herald } = make();
  herald.connect();
  await waitState(herald, 'connected');
  const sub = herald.subscribe('dm:bob', { onEvent() {}, getToken: () => 'tok' });
  const req = await until(() => WS.last.sentOfType('subscribe')[0]);
  WS.last.serverSend({ type: 'error', id: req.id, code: 'forbidden', message: 'subscribe dm:bob: not allowed' });
  assert.equal((await sub.ready.catch((e) => e)).code, 'forbidden');
  assert.equal(herald.state, 'connected');
  herald.close();
});

test('unsubscribed token_expired: a new token from getToken and subscribe with recover (nothing missed)', async () => {
  const { WS, herald, errors } = make();
  herald.connect();
  await waitState(herald, 'connected');
  let n = 0;
  const got = [];
  const ended = [];
  herald.on('unsubscribed', (i) => ended.push(i));
  herald.subscribe('dm:ann', { onEvent: (e) => got.push(e.offset), getToken: () => `sub-${++n}` });
  await answerSubscribe(WS.last, 'dm:ann', { epoch: 'E', offset: 3 });
  WS.last.serverSend(ev('dm:ann', 4));
  WS.last.serverSend({ type: 'unsubscribed', channel: 'dm:ann', reason: 'token_expired' });
  await until(() => WS.last.sentOfType('subscribe').length === 2);
  const again = WS.last.sentOfType('subscribe')[1];
  assert.equal(again.token, 'sub-2');
  assert.deepEqual(again.recover, { epoch: 'E', offset: 4 });
  WS.last.serverSend({ type: 'subscribed', id: again.id, channel: 'dm:ann', epoch: 'E', offset: 5, recovered: true, events: [ev('dm:ann', 5)] });
  WS.last.serverSend(ev('dm:ann', 6));
  assert.deepEqual(got, [4, 5, 6]);
  assert.deepEqual(ended, [{ channel: 'dm:ann', reason: 'token_expired' }]);
  assert.deepEqual(errors, []);
  herald.close();
});

test('unsubscribed kicked: the subscription ends (onError kicked), no resubscribe, not even after a reconnect', async () => {
  const { WS, herald, errors } = make();
  herald.connect();
  await waitState(herald, 'connected');
  const cb = [];
  const got = [];
  herald.subscribe('chat:team', { onEvent: (e) => got.push(e.offset), onError: (e) => cb.push(e), getToken: () => 'tok' });
  await answerSubscribe(WS.last, 'chat:team', { epoch: 'E', offset: 0 });
  WS.last.serverSend({ type: 'unsubscribed', channel: 'chat:team', reason: 'kicked' });
  WS.last.serverSend(ev('chat:team', 1));
  assert.deepEqual(got, []);
  assert.equal(cb.length, 1);
  assert.equal(cb[0].code, 'kicked');
  assert.deepEqual(cb[0].details, { reason: 'kicked' });
  assert.deepEqual(errors.map((e) => e.code), ['kicked']);
  await sleep(50);
  assert.equal(WS.last.sentOfType('subscribe').length, 1);
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  await sleep(30);
  assert.equal(WS.last.sentOfType('subscribe').length, 0);
  // token_expired without getToken ends the subscription too.
  herald.subscribe('plain', { onEvent() {}, onError: (e) => cb.push(e) });
  await answerSubscribe(WS.last, 'plain', { epoch: 'E', offset: 0 });
  WS.last.serverSend({ type: 'unsubscribed', channel: 'plain', reason: 'token_expired' });
  assert.equal(cb.at(-1).code, 'token_expired');
  herald.close();
});

test('server-side subscriptions: attached without subscribe; after a reconnect, missed events fetched with history before live ones', async () => {
  const token = fakeJwt({ sub: 'ann', channels: ['news'] });
  const { WS, herald, errors } = make({ token: () => token });
  const got = [];
  const recovered = [];
  const subscribed = [];
  herald.on('subscribed', (i) => subscribed.push(i));
  const sub = herald.subscribe('news', { onEvent: (e) => got.push(e.offset), onRecovered: (i) => recovered.push(i) });
  herald.subscribe('own', { onEvent() {} });
  herald.connect();
  await waitState(herald, 'connected');
  let s = WS.last;
  s.serverSend({ type: 'subscribed', channel: 'news', epoch: 'E', offset: 5, events: [] });
  await sub.ready;
  assert.deepEqual(s.sentOfType('subscribe').map((m) => m.channel), ['own']);
  assert.deepEqual(subscribed[0], { channel: 'news', epoch: 'E', offset: 5 });
  s.serverSend(ev('news', 6));
  s.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  s = WS.last;
  // No await from here: like messages from one socket read.
  s.serverSend({ type: 'subscribed', channel: 'news', epoch: 'E', offset: 9, events: [] });
  const h1 = s.sentOfType('history')[0];
  assert.deepEqual({ ...h1, id: 0 }, { type: 'history', id: 0, channel: 'news', after: 6, limit: 1000 });
  s.serverSend(ev('news', 10)); // live, held until the missed ones are delivered
  assert.deepEqual(got, [6]);
  s.serverSend({ type: 'history', id: h1.id, channel: 'news', epoch: 'E', offset: 10, events: [ev('news', 7), ev('news', 8)] });
  const h2 = s.sentOfType('history')[1]; // not caught up (8 < 9): the next page
  assert.equal(h2.after, 8);
  s.serverSend({ type: 'history', id: h2.id, channel: 'news', epoch: 'E', offset: 10, events: [ev('news', 9), ev('news', 10)] });
  s.serverSend(ev('news', 11));
  assert.deepEqual(got, [6, 7, 8, 9, 10, 11]);
  assert.equal(sub.duplicatesDropped, 1);
  assert.deepEqual(recovered, [{ channel: 'news', epoch: 'E', offset: 10, missed: 4 }]);
  assert.equal(s.sentOfType('subscribe').filter((m) => m.channel === 'news').length, 0);
  assert.deepEqual(errors, []);
  herald.close();
});

test('server-side subscriptions: another epoch, or missed events gone, is a failed recovery', async () => {
  const token = fakeJwt({ sub: 'ann', channels: ['news'] });
  const { WS, herald } = make({ token });
  const got = [];
  const failed = [];
  herald.subscribe('news', { onEvent: (e) => got.push(e.offset), onRecoveryFailed: (i) => failed.push(i) });
  herald.connect();
  await waitState(herald, 'connected');
  WS.last.serverSend({ type: 'subscribed', channel: 'news', epoch: 'E', offset: 2, events: [] });
  WS.last.serverSend(ev('news', 3));
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  WS.last.serverSend({ type: 'subscribed', channel: 'news', epoch: 'F', offset: 1, events: [] });
  assert.equal(WS.last.sentOfType('history').length, 0);
  assert.deepEqual(failed, [{ channel: 'news', epoch: 'F', offset: 1, previous: { epoch: 'E', offset: 3 } }]);
  WS.last.serverSend(ev('news', 2));
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 3 && herald.state === 'connected');
  const s = WS.last;
  s.serverSend({ type: 'subscribed', channel: 'news', epoch: 'F', offset: 50, events: [] });
  const h = s.sentOfType('history')[0];
  // retention dropped 3..9: a gap
  s.serverSend({ type: 'history', id: h.id, channel: 'news', epoch: 'F', offset: 50, events: [ev('news', 10), ev('news', 11)] });
  assert.deepEqual(failed[1], { channel: 'news', epoch: 'F', offset: 50, previous: { epoch: 'F', offset: 2 } });
  s.serverSend(ev('news', 51));
  assert.deepEqual(got, [3, 2, 51]);
  herald.close();
});

test('server-side subscriptions: an app subscription made later attaches; history: N is fetched; an unreadable token falls back on "already subscribed"', async () => {
  const { WS, herald, errors } = make({ token: 'opaque-token' });
  herald.connect();
  await waitState(herald, 'connected');
  const s = WS.last;
  s.serverSend({ type: 'subscribed', channel: 'news', epoch: 'E', offset: 4, events: [] });
  s.serverSend(ev('news', 5));
  const got = [];
  const sub = herald.subscribe('news', { history: 2, onEvent: (e) => got.push(e.offset) });
  const h = s.sentOfType('history')[0];
  assert.deepEqual({ ...h, id: 0 }, { type: 'history', id: 0, channel: 'news', limit: 2, before: 6 });
  s.serverSend(ev('news', 6));
  s.serverSend({ type: 'history', id: h.id, channel: 'news', epoch: 'E', offset: 6, events: [ev('news', 4), ev('news', 5)] });
  await sub.ready;
  assert.deepEqual(got, [4, 5, 6]);
  assert.equal(s.sentOfType('subscribe').length, 0);
  // The server subscribed 'alerts' (a claim the client could not read): its own subscribe is refused, then it attaches.
  const got2 = [];
  const sub2 = herald.subscribe('alerts', { onEvent: (e) => got2.push(e.offset) });
  const req = s.sentOfType('subscribe')[0];
  s.serverSend({ type: 'error', id: req.id, code: 'bad_request', message: 'already subscribed to alerts' });
  s.serverSend({ type: 'subscribed', channel: 'alerts', epoch: 'E', offset: 0, events: [] });
  await sub2.ready;
  s.serverSend(ev('alerts', 1));
  assert.deepEqual(got2, [1]);
  assert.deepEqual(errors, []);
  herald.close();
});

test('from.info of the publisher token is passed through', async () => {
  const { WS, herald } = make();
  herald.connect();
  await waitState(herald, 'connected');
  const got = [];
  herald.subscribe('room', { onEvent: (e) => got.push(e.from) });
  await answerSubscribe(WS.last, 'room', { epoch: 'E', offset: 0 });
  WS.last.serverSend({ ...ev('room', 1), from: { client: 'c9', user: 'ann', info: { name: 'Ann' } } });
  assert.deepEqual(got, [{ client: 'c9', user: 'ann', info: { name: 'Ann' } }]);
  herald.close();
});

test('server-side subscriptions: a claimed channel whose subscribed never comes is subscribed after requestTimeoutMs; once unsubscribed, subscribe() sends subscribe', async () => {
  const token = fakeJwt({ sub: 'ann', channels: ['news', 'lost'] });
  const { WS, herald } = make({ token, requestTimeoutMs: 100 });
  const lost = herald.subscribe('lost', { onEvent() {} });
  const news = herald.subscribe('news', { onEvent() {} });
  herald.connect();
  await waitState(herald, 'connected');
  const s = WS.last;
  s.serverSend({ type: 'subscribed', channel: 'news', epoch: 'E', offset: 0, events: [] });
  await news.ready;
  assert.equal(s.sentOfType('subscribe').length, 0);
  const req = await until(() => s.sentOfType('subscribe')[0], 2000, 'the fallback subscribe');
  assert.equal(req.channel, 'lost');
  s.serverSend({ type: 'subscribed', id: req.id, channel: 'lost', epoch: 'E', offset: 0, events: [] });
  await lost.ready;
  news.unsubscribe();
  assert.equal(s.sentOfType('unsubscribe')[0].channel, 'news');
  herald.subscribe('news', { onEvent() {} });
  assert.equal(s.sentOfType('subscribe').at(-1).channel, 'news');
  herald.close();
});
