// @herald/client over the SSE fallback (docs/protocol.md section 14),
// against the real `herald` binary, with an EventSource for Node written on
// fetch (test/support/event-source.mjs). What must hold: `transports:
// ['websocket', 'sse']` falls back to SSE when the WebSocket cannot be
// opened and keeps the subscribe API (events in order, once); a second
// subscribe re-opens the stream without losing or repeating the first
// channel's events; a stream cut in the middle recovers exactly (the
// EventSource sends Last-Event-ID); publish rejects with a clear error.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import { Herald } from '../dist/index.js';
import { NodeEventSource } from './support/event-source.mjs';
import { Server } from './support/server.mjs';
import { sleep, until, waitState } from './support/fake-socket.mjs';

const FAST = { initialDelayMs: 20, maxDelayMs: 200, factor: 2, jitter: 0.5 };
const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;

// A WebSocket that never gets through (a proxy that refuses upgrades).
class BlockedWebSocket {
  static attempts = 0;
  constructor() {
    BlockedWebSocket.attempts++;
    this.readyState = 0;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    setTimeout(() => {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: '' });
    }, 5);
  }
  send() {}
  close() {}
}

let server;
const clients = [];
before(async () => {
  server = await new Server({ config: '[server]\nsse_retry_ms = 50\n[engine]\ntype = "memory"\n' }).start();
});
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

function client(opts = {}) {
  const h = new Herald({
    url: server.wsUrl,
    WebSocket: BlockedWebSocket,
    EventSource: NodeEventSource,
    transports: ['websocket', 'sse'],
    reconnect: FAST,
    requestTimeoutMs: 5000,
    ...opts,
  });
  clients.push(h);
  return h;
}

async function publish(channel, data) {
  const res = await fetch(server.url('/api/publish'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event: 'e', data }),
  });
  assert.equal(res.status, 200);
  return (await res.json()).offset;
}

test('falls back to SSE when no WebSocket gets through, same subscribe API', async () => {
  const h = client();
  const ch = unique('fb');
  const got = [];
  const sub = h.subscribe(ch, { onEvent: (e) => got.push(e.data) });
  h.connect();
  await waitState(h, 'connected');
  await sub.ready;
  assert.ok(BlockedWebSocket.attempts >= 1);
  for (let i = 0; i < 5; i++) await publish(ch, i);
  await until(() => got.length === 5, 5000, '5 events');
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
  await assert.rejects(h.publish(ch, 'e', { x: 1 }), (e) => e.code === 'bad_request' && /SSE/.test(e.message));
  h.close();
});

test('a second subscription re-opens the stream; the first loses and repeats nothing', async () => {
  const h = client({ transports: ['sse'] });
  const a = unique('a');
  const b = unique('b');
  const gotA = [];
  const gotB = [];
  const subA = h.subscribe(a, { onEvent: (e) => gotA.push(e.offset) });
  h.connect();
  await subA.ready;
  const offsets = [await publish(a, 1), await publish(a, 2)];
  await until(() => gotA.length === 2, 5000, 'a: 2 events');
  const subB = h.subscribe(b, { onEvent: (e) => gotB.push(e.data) });
  offsets.push(await publish(a, 3)); // while the stream is re-opened
  await subB.ready;
  offsets.push(await publish(a, 4));
  await publish(b, 'b1');
  await until(() => gotA.length === 4 && gotB.length === 1, 5000, 'a: 4 events, b: 1');
  await sleep(100);
  assert.deepEqual(gotA, offsets);
  assert.deepEqual(gotB, ['b1']);
  h.close();
});

test('a cut stream recovers exactly what was missed', async () => {
  NodeEventSource.all.length = 0;
  const h = client({ transports: ['sse'] });
  const ch = unique('cut');
  const got = [];
  const sub = h.subscribe(ch, { onEvent: (e) => got.push(e.offset) });
  h.connect();
  await sub.ready;
  const offsets = [await publish(ch, 1)];
  await until(() => got.length === 1, 5000, 'first event');
  const es = NodeEventSource.all.at(-1);
  es.cut();
  for (let i = 2; i <= 6; i++) offsets.push(await publish(ch, i));
  await until(() => got.length === 6, 5000, '6 events');
  await sleep(100);
  assert.deepEqual(got, offsets);
  h.close();
});
