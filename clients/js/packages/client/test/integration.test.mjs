// Integration tests of @herald/client against the real `herald` binary
// (HERALD_BIN or build/release/herald) on 127.0.0.1, with the `ws` package
// as the WebSocket: round trip, server error codes, pings, exact recovery
// after dropped sockets while events are published over HTTP, a server
// restart (memory engine: new epoch, onRecoveryFailed; sqlite engine, the
// default: same epoch, the missed events recovered), and the offline queue.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { Herald } from '../dist/index.js';
import { Server } from './support/server.mjs';
import { sleep, until, waitState } from './support/fake-socket.mjs';

const FAST = { initialDelayMs: 50, maxDelayMs: 300, factor: 2, jitter: 0.5 };
const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;

// Records the client's sockets so a test can kill them (`terminate()`: no close frame).
class RecordingWebSocket extends WebSocket {
  static all = [];
  constructor(url) {
    super(url, { perMessageDeflate: false });
    RecordingWebSocket.all.push(this);
  }
}

let server;
const clients = [];

function client(opts = {}) {
  const h = new Herald({ url: server.wsUrl, WebSocket: RecordingWebSocket, reconnect: FAST, requestTimeoutMs: 5000, ...opts });
  clients.push(h);
  return h;
}

before(async () => {
  // Fast pings so that the pong test is short; the watchdog must not fire spuriously.
  server = await new Server({ env: { HERALD_LIMITS_PING_INTERVAL_MS: '200', HERALD_LIMITS_PONG_TIMEOUT_MS: '300' } }).start();
});

after(async () => {
  for (const h of clients) h.close();
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.log);
});

test('round trip: connect with a token function, subscribe with history, publish, history', async () => {
  const ch = unique('rt');
  assert.equal((await server.publish({ channel: ch, event: 'seed', data: { n: 1 } })).json.offset, 1);
  const h = client({ token: async () => 'ignored-for-now' });
  const states = [];
  h.on('state', (s) => states.push(s));
  h.connect();
  await waitState(h, 'connected');
  assert.match(h.clientId, /.+/);
  const got = [];
  const sub = h.subscribe(ch, { history: 10, onEvent: (e) => got.push(e) });
  await sub.ready;
  assert.equal(sub.offset, 1);
  assert.deepEqual(await h.publish(ch, 'chat.message', { text: 'hi' }), { offset: 2, replayed: false });
  assert.deepEqual(await h.publish(ch, 'typing', { on: true }, { ephemeral: true }), {});
  await until(() => got.length === 3);
  assert.deepEqual(
    got.map((e) => [e.event, e.offset, e.data]),
    [
      ['seed', 1, { n: 1 }],
      ['chat.message', 2, { text: 'hi' }],
      ['typing', undefined, { on: true }],
    ],
  );
  assert.equal(got[1].from.client, h.clientId);
  assert.equal(got[0].from, undefined); // published over HTTP
  const hist = await h.history(ch, { limit: 10 });
  assert.equal(hist.channel, ch);
  assert.equal(hist.offset, 2);
  assert.equal(hist.epoch, sub.epoch);
  assert.deepEqual(hist.events.map((e) => e.offset), [1, 2]);
  assert.deepEqual((await h.history(ch, { after: 1 })).events.map((e) => e.offset), [2]);
  assert.deepEqual((await h.history(ch, { before: 2 })).events.map((e) => e.offset), [1]);
  h.close();
  assert.deepEqual(states, ['connecting', 'connected', 'closed']);
});

test('errors surface the server code: bad channel, bad event, presence', async () => {
  const h = client();
  h.connect();
  await waitState(h, 'connected');
  let err = await h.publish('bad channel', 'e', 1).catch((e) => e);
  assert.equal(err.name, 'HeraldError');
  assert.equal(err.code, 'bad_request');
  assert.match(err.message, /^channel: invalid character ' '/);
  err = await h.publish('ok', 'bad event!', 1).catch((e) => e);
  assert.equal(err.code, 'bad_request');
  assert.match(err.message, /^event:/);
  err = await h.history('', {}).catch((e) => e);
  assert.equal(err.code, 'bad_request');
  err = await h.presence('room').catch((e) => e);
  assert.equal(err.code, 'forbidden');
  const sub = h.subscribe('bad!', { onEvent() {} });
  err = await sub.ready.catch((e) => e);
  assert.equal(err.code, 'bad_request');
  assert.equal(h.state, 'connected');
  h.close();
});

test('server pings are answered: the connection stays up across many ping intervals', async () => {
  const h = client({ pingTimeoutMs: 500 });
  const drops = [];
  h.on('disconnected', (i) => drops.push(i));
  h.connect();
  await waitState(h, 'connected');
  await sleep(1500); // 7 pings; without pongs the server would close with 1008 after 500 ms
  assert.deepEqual(drops, []);
  assert.equal(h.state, 'connected');
  h.close();
});

test('dropped sockets: the subscriber receives exactly offsets 1..N (no gap, no duplicate) after recovering', async () => {
  const ch = unique('rec');
  const N = 300;
  const h = client();
  const got = [];
  const recovered = [];
  let failed = 0;
  h.on('recovered', (i) => recovered.push(i));
  h.connect();
  const sub = h.subscribe(ch, { onEvent: (e) => got.push(e.offset), onRecoveryFailed: () => failed++ });
  await sub.ready;
  let published = 0;
  const publisher = (async () => {
    for (let i = 1; i <= N; i++) {
      const r = await server.publish({ channel: ch, event: 'n', data: { i } });
      assert.equal(r.json.offset, i);
      published = i;
      if (i % 10 === 0) await sleep(2);
    }
  })();
  // Kill the client's socket three times while events keep coming.
  for (const at of [40, 120, 220]) {
    await until(() => published >= at, 10_000, `publish ${at}`);
    const ws = RecordingWebSocket.all.at(-1);
    ws.terminate();
    await until(() => h.state !== 'connected', 2000, 'the drop to be seen');
  }
  await publisher;
  await until(() => got.at(-1) === N, 10_000, `offset ${N} (got ${got.length})`);
  await sleep(50);
  assert.deepEqual(got, Array.from({ length: N }, (_, i) => i + 1));
  assert.equal(failed, 0);
  assert.equal(recovered.length, 3);
  assert.ok(recovered.some((r) => r.missed > 0), JSON.stringify(recovered));
  h.close();
});

test('offline queue against the server: publishes issued while disconnected are sent after the reconnect', async () => {
  const ch = unique('q');
  const h = client({ offlineQueue: { max: 3 }, reconnect: { initialDelayMs: 200, maxDelayMs: 200, jitter: 0 } });
  const got = [];
  h.subscribe(ch, { onEvent: (e) => got.push(e.data.i) });
  h.connect();
  await waitState(h, 'connected');
  RecordingWebSocket.all.at(-1).terminate();
  await until(() => h.state === 'disconnected');
  const ps = [1, 2, 3].map((i) => h.publish(ch, 'n', { i }));
  assert.equal((await h.publish(ch, 'n', { i: 4 }).catch((e) => e)).code, 'queue_full');
  assert.deepEqual(await Promise.all(ps), [1, 2, 3].map((offset) => ({ offset, replayed: false })));
  await until(() => got.length === 3);
  assert.deepEqual(got, [1, 2, 3]);
  h.close();
});

test('server restart (memory engine): the client reconnects by itself and reports the lost epoch with onRecoveryFailed', async () => {
  const own = await new Server({ env: { HERALD_ENGINE_TYPE: 'memory' } }).start();
  try {
    const ch = unique('restart');
    const h = new Herald({ url: own.wsUrl, WebSocket, reconnect: FAST, requestTimeoutMs: 5000 });
    clients.push(h);
    const got = [];
    const failed = [];
    const disconnects = [];
    h.on('disconnected', (i) => disconnects.push(i.code));
    h.connect();
    const sub = h.subscribe(ch, { onEvent: (e) => got.push(e.offset), onRecoveryFailed: (i) => failed.push(i) });
    await sub.ready;
    for (let i = 0; i < 3; i++) await own.publish({ channel: ch, event: 'n', data: i });
    await until(() => got.length === 3);
    const oldEpoch = sub.epoch;
    const exit = await own.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    await until(() => h.state !== 'connected');
    assert.equal(disconnects[0], 1001); // graceful shutdown
    await sleep(300); // a few failed attempts while the server is down
    await own.start(); // same port
    await until(() => failed.length === 1, 10_000, 'onRecoveryFailed');
    assert.equal(h.state, 'connected');
    assert.equal(failed[0].previous.epoch, oldEpoch);
    assert.equal(failed[0].previous.offset, 3);
    assert.notEqual(failed[0].epoch, oldEpoch);
    assert.equal(failed[0].offset, 0);
    // The new epoch starts again at offset 1, and it is delivered.
    await own.publish({ channel: ch, event: 'n', data: 'new' });
    await until(() => got.length === 4);
    assert.deepEqual(got, [1, 2, 3, 1]);
    h.close();
  } finally {
    await own.stop();
  }
});

test('server restart (sqlite engine, the default): the client recovers what was published while it was down', async () => {
  const own = await new Server().start(); // same tmpdir, so the same ./data on restart
  try {
    const ch = unique('restart-sqlite');
    const h = new Herald({ url: own.wsUrl, WebSocket, reconnect: FAST, requestTimeoutMs: 5000 });
    clients.push(h);
    const got = [];
    const failed = [];
    h.connect();
    const sub = h.subscribe(ch, { onEvent: (e) => got.push([e.offset, e.data]), onRecoveryFailed: (i) => failed.push(i) });
    await sub.ready;
    for (let i = 1; i <= 3; i++) await own.publish({ channel: ch, event: 'n', data: i });
    await until(() => got.length === 3);
    const epoch = sub.epoch;
    assert.deepEqual(await own.stop(), { code: 0, signal: null });
    await until(() => h.state !== 'connected');
    // The client comes back by itself, before or during these publishes:
    // each event must arrive once, recovered or live, under the old epoch.
    await own.start();
    for (let i = 4; i <= 6; i++) assert.equal((await own.publish({ channel: ch, event: 'n', data: i })).json.offset, i);
    await until(() => got.length === 6, 10_000, 'recovered events');
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6].map((i) => [i, i]));
    assert.equal(sub.epoch, epoch, 'the epoch survives the restart');
    assert.deepEqual(failed, []);
    await own.publish({ channel: ch, event: 'n', data: 7 });
    await until(() => got.length === 7);
    assert.deepEqual(got[6], [7, 7]);
    h.close();
  } finally {
    await own.stop();
  }
});
