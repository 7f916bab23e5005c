// Exactly-once publishing against the real `herald` binary (HERALD_BIN or
// build/release/herald; skipped, saying why, by a binary without
// idempotency keys): 1,000 keyed publishes from one client whose socket is
// killed (terminate(): no close frame) every ~50 ms. Every promise must
// resolve, each message must be in history exactly once, and each promise's
// offset must be the one history shows for that message. Also: the
// caller's own key replays (replayed: true) and conflicts
// (idempotency_conflict) as the protocol says.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { Herald } from '../dist/index.js';
import { Server } from './support/server.mjs';
import { sleep } from './support/fake-socket.mjs';

const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;

class KillableWebSocket extends WebSocket {
  static all = [];
  constructor(url) {
    super(url, { perMessageDeflate: false });
    KillableWebSocket.all.push(this);
  }
}

let server;
let skip = false;
before(async () => {
  server = await new Server().start();
  // A binary from before issue 12 ignores or refuses the key: skip, saying so.
  const ch = unique('probe');
  const a = await server.publish({ channel: ch, event: 'p', data: 1, idempotency_key: 'probe-1' });
  const b = await server.publish({ channel: ch, event: 'p', data: 1, idempotency_key: 'probe-1' });
  if (a.status !== 200 || b.json.replayed !== true) {
    skip = `this herald binary does not implement idempotency keys (HTTP replies ${JSON.stringify(a.json)}, ${JSON.stringify(b.json)})`;
  }
});
after(async () => {
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.log);
});

async function allHistory(ch) {
  const events = [];
  let afterOffset = 0;
  for (;;) {
    const res = await fetch(server.url(`/api/channels/${encodeURIComponent(ch)}/history?after=${afterOffset}&limit=1000`));
    const page = await res.json();
    assert.equal(res.status, 200, JSON.stringify(page));
    if (page.events.length === 0) return events;
    events.push(...page.events);
    afterOffset = page.events.at(-1).offset;
  }
}

test('1,000 keyed publishes while the socket is killed every ~50 ms: each stored exactly once, each promise has its offset', async (t) => {
  if (skip) return t.skip(skip);
  const ch = unique('once');
  const N = 1000;
  const h = new Herald({
    url: server.wsUrl,
    WebSocket: KillableWebSocket,
    reconnect: { initialDelayMs: 5, maxDelayMs: 50, factor: 2, jitter: 0.5 },
    publishTimeoutMs: 60_000,
    offlineQueue: { max: N, maxBytes: 1 << 20 },
  });
  h.connect();
  let kills = 0;
  let killing = true;
  const killer = (async () => {
    while (killing) {
      await sleep(50);
      const ws = KillableWebSocket.all.at(-1);
      if (killing && ws && ws.readyState === WebSocket.OPEN) {
        ws.terminate();
        kills++;
      }
    }
  })();
  const results = new Array(N);
  const promises = [];
  for (let i = 0; i < N; i++) {
    promises.push(h.publish(ch, 'n', { i }).then((r) => (results[i] = r)));
    if (i % 5 === 4) await sleep(5); // spread over ~20 kills
  }
  const settled = await Promise.allSettled(promises);
  killing = false;
  await killer;
  h.close();
  const failed = settled.filter((s) => s.status === 'rejected').map((s) => `${s.reason.code}: ${s.reason.message}`);
  assert.deepEqual(failed, [], 'every publish resolves');
  assert.ok(kills >= 10, `only ${kills} kills`);

  const events = await allHistory(ch);
  const byI = new Map();
  for (const e of events) {
    const list = byI.get(e.data.i) ?? [];
    list.push(e.offset);
    byI.set(e.data.i, list);
  }
  const twice = [...byI].filter(([, offsets]) => offsets.length > 1);
  assert.deepEqual(twice, [], 'no message stored twice');
  assert.equal(events.length, N, 'every message stored');
  for (let i = 0; i < N; i++) {
    assert.deepEqual([results[i].offset], byI.get(i), `message ${i}: the promise's offset is the stored one`);
  }
  const replayed = results.filter((r) => r.replayed).length;
  t.diagnostic(`${kills} socket kills, ${KillableWebSocket.all.length} sockets, ${replayed} acks were replays`);
});

test('the caller’s key: the same publish again is a replay with the original offset; other data is idempotency_conflict', async (t) => {
  if (skip) return t.skip(skip);
  const ch = unique('key');
  const h = new Herald({ url: server.wsUrl, WebSocket });
  h.connect();
  const key = `order-${crypto.randomUUID()}`;
  assert.deepEqual(await h.publish(ch, 'order.placed', { total: 5 }, { idempotencyKey: key }), { offset: 1, replayed: false });
  assert.deepEqual(await h.publish(ch, 'order.placed', { total: 5 }, { idempotencyKey: key }), { offset: 1, replayed: true });
  const err = await h.publish(ch, 'order.placed', { total: 6 }, { idempotencyKey: key }).catch((e) => e);
  assert.equal(err.code, 'idempotency_conflict');
  assert.match(err.message, new RegExp(`idempotency_key ${key} was already used on ${ch} for another event or data \\(offset 1\\)`));
  const eph = await h.publish(ch, 'typing', {}, { ephemeral: true });
  assert.deepEqual(eph, {});
  assert.equal((await allHistory(ch)).length, 1);
  h.close();
});
