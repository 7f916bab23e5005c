// Integration tests of authentication across the SDKs against the real
// `herald` binary (HERALD_BIN or build/release/herald), started with an
// `[auth]` HS256 key, an API key and a namespace `chat` closed to anonymous
// connections. Tokens come from @herald/server's createConnectionToken; the
// WebSocket client is @herald/client over the `ws` package.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, test } from 'node:test';
import { Herald } from '@herald/client';
import WebSocket from 'ws';
import { createConnectionToken, createSubscriptionToken, HeraldError, HeraldServer } from '../dist/index.js';
import { Server } from '../../client/test/support/server.mjs';
import { sleep, until, waitState } from '../../client/test/support/fake-socket.mjs';

const SECRET = '0123456789abcdef0123456789abcdef-test-secret';
const API_KEY = 'test-api-key-0123456789';
const CONFIG = `
[auth]
[[auth.keys]]
name = "app"
algorithms = ["HS256"]
secret = "${SECRET}"

[[api.keys]]
name = "backend"
key = "${API_KEY}"
scopes = ["publish", "history", "admin", "presence"]

[namespaces.chat]
anonymous = false
`;
const FAST = { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0 };
const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;
const tokenFor = (sub, claims = {}) => createConnectionToken({ sub, ...claims }, { secret: SECRET });

const server = await new Server({ config: CONFIG }).start();

const clients = [];
function client(opts) {
  const h = new Herald({ url: server.wsUrl, WebSocket, reconnect: FAST, requestTimeoutMs: 5000, ...opts });
  clients.push(h);
  return h;
}

after(async () => {
  for (const h of clients) h.close();
  if (server) {
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, server.log);
  }
});

test('a client with a token connects as its sub; its events carry from.user and from.info', async () => {
  const ch = unique('chat:room');
  const h = client({ token: () => tokenFor('user-ann', { info: { name: 'Ann' } }) });
  const connected = [];
  h.on('connected', (i) => connected.push(i));
  h.connect();
  await waitState(h, 'connected');
  assert.equal(h.user, 'user-ann');
  assert.equal(connected[0].user, 'user-ann');
  assert.ok(typeof h.expires === 'number' && h.expires > Date.now() / 1000 + 3000, `expires ${h.expires}`);
  const got = [];
  await h.subscribe(ch, { onEvent: (e) => got.push(e) }).ready;
  await h.publish(ch, 'chat.message', { text: 'hi' });
  await until(() => got.length === 1);
  assert.equal(got[0].from.user, 'user-ann');
  assert.deepEqual(got[0].from.info, { name: 'Ann' });
  h.close();
});

test('an anonymous client is refused on a namespace with anonymous = false; the connection stays', async () => {
  const h = client({});
  h.connect();
  await waitState(h, 'connected');
  assert.equal(h.user, null);
  const err = await h.subscribe(unique('chat:room'), { onEvent() {} }).ready.catch((e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'unauthorized');
  assert.equal((await h.publish(unique('chat:room'), 'e', 1).catch((e) => e)).code, 'unauthorized');
  assert.equal(h.state, 'connected');
  h.close();
});

test('a bad token: one retry with a fresh token, then the terminal closed state with closeError unauthorized, no reconnect loop', async () => {
  const wrong = (sub) => createConnectionToken({ sub }, { secret: SECRET.replace('0', 'X') });
  const opened = await server.metric('herald_ws_connections_opened_total');
  let calls = 0;
  const fn = client({ token: () => (calls++, wrong('mallory')) });
  const errors = [];
  fn.on('error', (e) => errors.push(e.code));
  fn.connect();
  await waitState(fn, 'closed', 10_000);
  assert.equal(fn.closeError?.code, 'unauthorized');
  assert.equal(calls, 2);
  assert.deepEqual(errors, ['unauthorized', 'unauthorized']);
  const fixed = client({ token: wrong('mallory') });
  fixed.connect();
  await waitState(fixed, 'closed', 10_000);
  assert.equal(fixed.closeError?.code, 'unauthorized');
  await sleep(1000); // many backoff periods (50..200 ms)
  assert.equal(fn.state, 'closed');
  assert.equal((await server.metric('herald_ws_connections_opened_total')) - opened, 3, 'function: 2 connections, string: 1');
});

test('a token about to expire is refreshed on the open connection', async () => {
  let n = 0;
  const h = client({ token: () => createConnectionToken({ sub: 'user-refresh', expiresIn: n++ === 0 ? 3 : 3600 }, { secret: SECRET }) });
  const refreshed = [];
  h.on('refreshed', (i) => refreshed.push(i));
  h.connect();
  await waitState(h, 'connected');
  const first = h.expires;
  await until(() => refreshed.length === 1, 5000, 'refreshed');
  assert.ok(h.expires > first + 3000);
  await sleep(2500); // past the first token's exp: still the same connection
  assert.equal(h.state, 'connected');
  assert.equal(n, 2);
  h.close();
});

test('subscription tokens: getToken for subscribe and sub_refresh before exp; the subscription outlives its first token', async () => {
  const api = new HeraldServer({ url: server.url(''), apiKey: API_KEY });
  const ch = unique('chat:dm');
  const h = client({ token: () => tokenFor('user-dm') });
  const calls = [];
  const ended = [];
  const errors = [];
  const got = [];
  h.on('unsubscribed', (i) => ended.push(i));
  h.on('error', (e) => errors.push(e.code));
  h.connect();
  await h.subscribe(ch, {
    onEvent: (e) => got.push(e.offset),
    getToken: (channel) => {
      calls.push(channel);
      return createSubscriptionToken({ sub: 'user-dm', channel, expiresIn: 2 }, { secret: SECRET });
    },
  }).ready;
  await sleep(3500); // past the first token's exp (refreshed at ~1 s, then every ~1 s)
  await api.publish(ch, 'chat.message', { text: 'still here' });
  await until(() => got.length === 1, 5000, 'an event after the first token lapsed');
  assert.ok(calls.length >= 3, `getToken called ${calls.length} times`);
  assert.deepEqual(ended, []);
  assert.deepEqual(errors, []);
  const wrong = client({ token: () => tokenFor('user-dm') });
  wrong.connect();
  const err = await wrong.subscribe(unique('chat:dm'), { onEvent() {}, getToken: () => createSubscriptionToken({ sub: 'someone-else', channel: ch }, { secret: SECRET }) }).ready.catch((e) => e);
  assert.equal(err.code, 'forbidden');
  assert.equal(wrong.state, 'connected');
  h.close();
  wrong.close();
});

test('a lapsed subscription token (refresh failing): unsubscribed token_expired, then subscribed again with a new token, nothing missed', async () => {
  const api = new HeraldServer({ url: server.url(''), apiKey: API_KEY });
  const ch = unique('chat:dm');
  const h = client({ token: () => tokenFor('user-lapse') });
  let phase = 'short';
  const ended = [];
  const got = [];
  const errors = [];
  h.on('error', (e) => errors.push(e.code));
  h.on('unsubscribed', (i) => {
    ended.push(i);
    phase = 'good'; // the backend works again
  });
  h.connect();
  await h.subscribe(ch, {
    onEvent: (e) => got.push(e.offset),
    getToken: (channel) => {
      if (phase === 'failing') throw new Error('backend down');
      const expiresIn = phase === 'short' ? 2 : 3600;
      if (phase === 'short') phase = 'failing';
      return createSubscriptionToken({ sub: 'user-lapse', channel, expiresIn }, { secret: SECRET });
    },
  }).ready;
  await until(() => ended.length === 1, 6000, 'the token to lapse');
  assert.deepEqual(ended, [{ channel: ch, reason: 'token_expired' }]);
  await api.publish(ch, 'chat.message', { n: 1 }); // maybe before the new subscribe: recovered
  await until(() => got.length === 1, 5000, 'the event');
  await api.publish(ch, 'chat.message', { n: 2 });
  await until(() => got.length === 2, 5000, 'live again');
  assert.deepEqual(got, [1, 2]);
  assert.ok(errors.length >= 1 && errors.every((c) => c === 'token_failed'), JSON.stringify(errors));
  h.close();
});

test('@herald/server with the API key publishes; without it: 401 unauthorized', async () => {
  const ch = unique('chat:room');
  const api = new HeraldServer({ url: server.url(''), apiKey: API_KEY });
  assert.deepEqual(await api.publish(ch, 'chat.message', { text: 'from the backend' }), { offset: 1, replayed: false });
  assert.equal((await api.history(ch)).events.length, 1);
  for (const bad of [new HeraldServer({ url: server.url('') }), new HeraldServer({ url: server.url(''), apiKey: 'not-the-key' })]) {
    const err = await bad.publish(ch, 'chat.message', {}).catch((e) => e);
    assert.ok(err instanceof HeraldError);
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.status, 401);
  }
});

test('server.disconnect(user) closes the client with 4003; it does not reconnect', async () => {
  const api = new HeraldServer({ url: server.url(''), apiKey: API_KEY });
  const h = client({ token: () => tokenFor('user-banned') });
  const closes = [];
  h.on('disconnected', (i) => closes.push(i.code));
  h.connect();
  await waitState(h, 'connected');
  const opened = await server.metric('herald_ws_connections_opened_total');
  assert.deepEqual(await api.disconnect('user-banned', 'banned by the tests'), { disconnected: 1 });
  await waitState(h, 'closed', 5000);
  assert.deepEqual(closes, [4003]);
  assert.equal(h.closeError?.code, 'disconnected_by_server');
  assert.match(h.closeError.message, /banned by the tests/);
  await sleep(800);
  assert.equal(await server.metric('herald_ws_connections_opened_total'), opened);
  assert.deepEqual(await api.disconnect('nobody'), { disconnected: 0 });
});

test('server.unsubscribe(user, channel) ends the subscription (kicked); the client does not subscribe again', async () => {
  const api = new HeraldServer({ url: server.url(''), apiKey: API_KEY });
  const ch = unique('chat:team');
  const h = client({ token: () => tokenFor('user-kicked') });
  const errors = [];
  const got = [];
  h.connect();
  await h.subscribe(ch, { onEvent: (e) => got.push(e.offset), onError: (e) => errors.push(e.code) }).ready;
  assert.deepEqual(await api.unsubscribe('user-kicked', ch), { unsubscribed: 1 });
  await until(() => errors.length === 1, 5000, 'kicked');
  assert.deepEqual(errors, ['kicked']);
  await api.publish(ch, 'chat.message', { text: 'after' });
  await sleep(300);
  assert.deepEqual(got, []);
  h.close();
});

test('server-side subscriptions (channels claim): attached without subscribe; events missed across a reconnect are caught up', async () => {
  const api = new HeraldServer({ url: server.url(''), apiKey: API_KEY });
  const ch = unique('chat:inbox');
  class Recording extends WebSocket {
    static all = [];
    constructor(url) {
      super(url);
      Recording.all.push(this);
    }
  }
  const h = client({ WebSocket: Recording, token: () => tokenFor('user-inbox', { channels: [ch] }) });
  const got = [];
  const errors = [];
  h.on('error', (e) => errors.push(e));
  const sub = h.subscribe(ch, { onEvent: (e) => got.push(e.offset) });
  h.connect();
  await sub.ready;
  for (let i = 1; i <= 3; i++) await api.publish(ch, 'chat.message', { i });
  await until(() => got.length === 3);
  Recording.all.at(-1).terminate();
  await until(() => h.state !== 'connected');
  for (let i = 4; i <= 6; i++) await api.publish(ch, 'chat.message', { i });
  await until(() => got.length === 6, 10_000, `caught up (got ${got})`);
  await api.publish(ch, 'chat.message', { i: 7 });
  await until(() => got.length === 7);
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(errors, []);
  h.close();
});
