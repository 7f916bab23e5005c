// Unit tests of presence in @herald/client against the fake WebSocket:
// presence / presence_stats / destroy requests and their replies, `join` and
// `leave` emitted by the channel's Subscription (camelCase, own join after
// subscribed, nothing after unsubscribe), `unsubscribed` destroyed / expired
// (the final event first, then the subscription ends with that code and is
// not subscribed again, not even after a reconnect), and `channel_full`
// refusing a subscribe for good.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Herald, HeraldError } from '../dist/index.js';
import { fakeSocketClass, sleep, until, waitState } from './support/fake-socket.mjs';

const FAST = { initialDelayMs: 5, maxDelayMs: 20, factor: 2, jitter: 0 };

async function connected(opts = {}) {
  const WS = fakeSocketClass();
  const herald = new Herald({ url: 'ws://fake/ws', WebSocket: WS, reconnect: FAST, requestTimeoutMs: 300, ...opts });
  const errors = [];
  herald.on('error', (e) => errors.push(e.code));
  herald.connect();
  await waitState(herald, 'connected');
  return { WS, herald, errors };
}

async function answerSubscribe(sock, channel, reply = { epoch: 'E', offset: 0 }) {
  const req = await until(() => sock.sentOfType('subscribe').find((m) => m.channel === channel), 2000, `subscribe ${channel}`);
  sock.serverSend({ type: 'subscribed', id: req.id, channel, events: [], ...reply });
  return req;
}

/** Answers the last request of `type` on `sock` with `reply` (its id added). */
async function answer(sock, type, reply) {
  const req = await until(() => sock.sentOfType(type).at(-1), 2000, type);
  sock.serverSend({ id: req.id, ...reply });
  return req;
}

test('presence: the request, and the reply as {members, complete} with only the fields present', async () => {
  const { WS, herald } = await connected();
  const p = herald.presence('room:1');
  const req = await answer(WS.last, 'presence', {
    type: 'presence',
    channel: 'room:1',
    members: [{ client: 'c1', user: 'ana', info: { name: 'Ana' } }, { client: 'c2' }, { client: 'c3', user: 'bob', info: null }],
    complete: true,
  });
  assert.deepEqual(Object.keys(req).sort(), ['channel', 'id', 'type']);
  assert.deepEqual(await p, {
    members: [{ client: 'c1', user: 'ana', info: { name: 'Ana' } }, { client: 'c2' }, { client: 'c3', user: 'bob', info: null }],
    complete: true,
  });
  const over = herald.presence('room:big');
  await answer(WS.last, 'presence', { type: 'presence', channel: 'room:big', members: [], complete: false });
  assert.deepEqual(await over, { members: [], complete: false });
  herald.close();
});

test('presenceStats: {clients, users?}; errors carry the server code', async () => {
  const { WS, herald } = await connected();
  let p = herald.presenceStats('room:1');
  await answer(WS.last, 'presence_stats', { type: 'presence_stats', channel: 'room:1', clients: 3, users: 2 });
  assert.deepEqual(await p, { clients: 3, users: 2 });
  p = herald.presenceStats('room:big');
  await answer(WS.last, 'presence_stats', { type: 'presence_stats', channel: 'room:big', clients: 1500 });
  assert.deepEqual(await p, { clients: 1500 });
  p = herald.presence('chat:x');
  await answer(WS.last, 'presence', { type: 'error', code: 'forbidden', message: 'presence is not enabled on chat:x' });
  const err = await p.catch((e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'forbidden');
  assert.equal(err.message, 'presence is not enabled on chat:x');
  herald.close();
});

test('destroy: event and data only when given; resolves {epoch}; rejects with the server code', async () => {
  const { WS, herald } = await connected();
  let p = herald.destroy('room:1');
  let req = await answer(WS.last, 'destroy', { type: 'destroyed', channel: 'room:1', epoch: 'N2' });
  assert.deepEqual(Object.keys(req).sort(), ['channel', 'id', 'type']);
  assert.deepEqual(await p, { epoch: 'N2' });
  p = herald.destroy('room:2', { event: 'chat.destroy', data: { by: 'ana' } });
  req = await answer(WS.last, 'destroy', { type: 'destroyed', channel: 'room:2', epoch: 'N3' });
  assert.equal(req.event, 'chat.destroy');
  assert.deepEqual(req.data, { by: 'ana' });
  assert.deepEqual(await p, { epoch: 'N3' });
  p = herald.destroy('room:3', { event: 'bye', data: null });
  req = await answer(WS.last, 'destroy', { type: 'error', code: 'forbidden', message: 'destroy on room:3 is not allowed' });
  assert.equal(req.data, null);
  assert.equal((await p.catch((e) => e)).code, 'forbidden');
  herald.close();
  assert.equal((await herald.destroy('room:1').catch((e) => e)).code, 'closed');
});

test('join and leave reach the subscription of their channel, camelCase, the own join right after subscribed', async () => {
  const { WS, herald } = await connected();
  const seen = [];
  const sub = herald.subscribe('room:1', { onEvent: (e) => seen.push(['event', e.offset]) });
  sub.on('join', (m) => seen.push(['join', m]));
  sub.on('leave', (m) => seen.push(['leave', m]));
  const other = herald.subscribe('room:2', { onEvent() {} });
  const otherSeen = [];
  other.on('join', (m) => otherSeen.push(m.client));
  // Not subscribed yet: a join for the channel is not delivered.
  WS.last.serverSend({ type: 'join', channel: 'room:1', client: 'early', user_joined: true });
  const req = await until(() => WS.last.sentOfType('subscribe').find((m) => m.channel === 'room:1'));
  // The reply and the own join in one read, as the server sends them.
  WS.last.serverSend({ type: 'subscribed', id: req.id, channel: 'room:1', epoch: 'E', offset: 0, events: [] });
  WS.last.serverSend({ type: 'join', channel: 'room:1', client: herald.clientId, user_joined: true });
  WS.last.serverSend({ type: 'join', channel: 'room:1', client: 'c9', user: 'ana', info: { name: 'Ana' }, user_joined: false });
  WS.last.serverSend({ type: 'event', channel: 'room:1', event: 'e', offset: 1, ts: 1, data: null });
  WS.last.serverSend({ type: 'leave', channel: 'room:1', client: 'c9', user: 'ana', info: { name: 'Ana' }, user_left: true });
  WS.last.serverSend({ type: 'leave', channel: 'room:1', client: 'c8', user_left: false });
  WS.last.serverSend({ type: 'join', channel: 'nobody', client: 'x', user_joined: true });
  assert.deepEqual(seen, [
    ['join', { channel: 'room:1', client: herald.clientId, userJoined: true }],
    ['join', { channel: 'room:1', client: 'c9', user: 'ana', info: { name: 'Ana' }, userJoined: false }],
    ['event', 1],
    ['leave', { channel: 'room:1', client: 'c9', user: 'ana', info: { name: 'Ana' }, userLeft: true }],
    ['leave', { channel: 'room:1', client: 'c8', userLeft: false }],
  ]);
  assert.deepEqual(otherSeen, []);
  // The returned function removes the listener; unsubscribe() stops them all.
  const off = sub.on('join', () => seen.push('removed listener'));
  off();
  sub.unsubscribe();
  WS.last.serverSend({ type: 'join', channel: 'room:1', client: 'late', user_joined: true });
  assert.equal(seen.length, 5);
  herald.close();
});

test('a throwing join listener does not stop the others nor the client', async () => {
  const { WS, herald } = await connected();
  const reported = [];
  const original = globalThis.reportError;
  globalThis.reportError = (e) => reported.push(e.message);
  try {
    const sub = herald.subscribe('room:1', { onEvent() {} });
    const got = [];
    sub.on('join', () => {
      throw new Error('boom');
    });
    sub.on('join', (m) => got.push(m.client));
    await answerSubscribe(WS.last, 'room:1');
    WS.last.serverSend({ type: 'join', channel: 'room:1', client: 'c1', user_joined: true });
    assert.deepEqual(got, ['c1']);
    assert.deepEqual(reported, ['boom']);
    assert.equal(herald.state, 'connected');
  } finally {
    globalThis.reportError = original;
    herald.close();
  }
});

for (const [reason, why] of [
  ['destroyed', /the channel was destroyed/],
  ['expired', /the channel expired/],
]) {
  test(`unsubscribed ${reason}: the final event is delivered, then the subscription ends with code ${reason}; never subscribed again`, async () => {
    const { WS, herald, errors } = await connected();
    const got = [];
    const cb = [];
    const ended = [];
    herald.on('unsubscribed', (i) => ended.push(i));
    const sub = herald.subscribe('room:1', { onEvent: (e) => got.push([e.event, e.offset, e.data]), onError: (e) => cb.push(e) });
    const stillThere = herald.subscribe('room:2', { onEvent() {} });
    await answerSubscribe(WS.last, 'room:1', { epoch: 'E', offset: 4 });
    await answerSubscribe(WS.last, 'room:2');
    WS.last.serverSend({ type: 'event', channel: 'room:1', event: 'chat.destroy', ts: 5, data: { by: 'ana' } });
    WS.last.serverSend({ type: 'unsubscribed', channel: 'room:1', reason });
    WS.last.serverSend({ type: 'event', channel: 'room:1', event: 'after', offset: 1, ts: 6, data: null });
    WS.last.serverSend({ type: 'join', channel: 'room:1', client: 'c2', user_joined: true });
    assert.deepEqual(got, [['chat.destroy', undefined, { by: 'ana' }]]);
    assert.deepEqual(ended, [{ channel: 'room:1', reason }]);
    assert.equal(cb.length, 1);
    assert.ok(cb[0] instanceof HeraldError);
    assert.equal(cb[0].code, reason);
    assert.match(cb[0].message, why);
    assert.deepEqual(cb[0].details, { reason });
    assert.deepEqual(errors, [reason]);
    assert.equal(sub.active, false);
    assert.equal(stillThere.active, true);
    await sleep(30);
    assert.equal(WS.last.sentOfType('subscribe').length, 2, 'not subscribed again');
    // Nor after a reconnect: only room:2 is resubscribed.
    WS.last.serverClose(1006);
    await until(() => WS.instances.length === 2 && herald.state === 'connected');
    await until(() => WS.last.sentOfType('subscribe').length === 1);
    await sleep(30);
    assert.deepEqual(WS.last.sentOfType('subscribe').map((m) => m.channel), ['room:2']);
    // The app may subscribe again: a fresh subscribe (no recover of the old epoch).
    herald.subscribe('room:1', { onEvent() {} });
    const again = await until(() => WS.last.sentOfType('subscribe').find((m) => m.channel === 'room:1'));
    assert.equal(again.recover, undefined);
    herald.close();
  });
}

test('channel_full: the subscribe is refused for good (ready rejects, onError), not retried, not after a reconnect', async () => {
  const { WS, herald, errors } = await connected();
  const cb = [];
  const sub = herald.subscribe('room:full', { onEvent() {}, onError: (e) => cb.push(e.code) });
  const req = await until(() => WS.last.sentOfType('subscribe')[0]);
  WS.last.serverSend({ type: 'error', id: req.id, code: 'channel_full', message: 'channel room:full is full (max_users 2)' });
  const err = await sub.ready.catch((e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'channel_full');
  assert.equal(err.message, 'channel room:full is full (max_users 2)');
  assert.deepEqual(cb, ['channel_full']);
  assert.deepEqual(errors, ['channel_full']);
  assert.equal(herald.state, 'connected');
  await sleep(50);
  assert.equal(WS.last.sentOfType('subscribe').length, 1);
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  await sleep(30);
  assert.equal(WS.last.sentOfType('subscribe').length, 0);
  // Trying again later is the app's decision.
  const retry = herald.subscribe('room:full', { onEvent() {} });
  await answerSubscribe(WS.last, 'room:full');
  await retry.ready;
  herald.close();
});

test('a recovering resubscribe refused with channel_full (the place was taken meanwhile) ends the subscription', async () => {
  const { WS, herald } = await connected();
  const cb = [];
  const sub = herald.subscribe('room:1', { onEvent() {}, onError: (e) => cb.push(e.code) });
  await answerSubscribe(WS.last, 'room:1', { epoch: 'E', offset: 3 });
  WS.last.serverClose(1006);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  const req = await until(() => WS.last.sentOfType('subscribe')[0]);
  assert.deepEqual(req.recover, { epoch: 'E', offset: 3 });
  WS.last.serverSend({ type: 'error', id: req.id, code: 'channel_full', message: 'channel room:1 is full (max_users 1)' });
  assert.deepEqual(cb, ['channel_full']);
  assert.equal(sub.active, false);
  herald.close();
});
