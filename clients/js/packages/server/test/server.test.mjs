// Integration tests of @herald/server against the real `herald` binary
// (HERALD_BIN or build/release/herald): publish then history, ephemeral
// publishes, server error codes with their HTTP status, a server that is
// down, one that never answers (timeout), and the Authorization header.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Herald } from '@herald/client';
import WebSocket from 'ws';
import { HeraldError, HeraldServer } from '../dist/index.js';
import { freePort, Server } from '../../client/test/support/server.mjs';
import { until } from '../../client/test/support/fake-socket.mjs';

const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;

let server;
before(async () => {
  server = await new Server().start();
});
after(async () => {
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.log);
});

test('publish then history: offsets, data, paging; a WebSocket subscriber receives the events', async () => {
  const api = new HeraldServer({ url: `http://127.0.0.1:${server.port}/` });
  const ch = unique('chat:room');
  const ws = new Herald({ url: server.wsUrl, WebSocket });
  const got = [];
  ws.connect();
  await ws.subscribe(ch, { onEvent: (e) => got.push([e.offset, e.event, e.data]) }).ready;
  assert.deepEqual(await api.publish(ch, 'chat.message', { text: 'one' }), { offset: 1, replayed: false });
  assert.deepEqual(await api.publish(ch, 'chat.message', { text: 'two' }), { offset: 2, replayed: false });
  assert.deepEqual(await api.publish(ch, 'typing', { on: true }, { ephemeral: true }), {});
  assert.deepEqual(await api.publish(ch, 'chat.destroy', undefined), { offset: 3, replayed: false });
  await until(() => got.length === 4);
  assert.deepEqual(got, [
    [1, 'chat.message', { text: 'one' }],
    [2, 'chat.message', { text: 'two' }],
    [undefined, 'typing', { on: true }],
    [3, 'chat.destroy', null],
  ]);
  ws.close();
  const all = await api.history(ch);
  assert.equal(all.channel, ch);
  assert.equal(all.offset, 3);
  assert.match(all.epoch, /.+/);
  assert.deepEqual(all.events.map((e) => [e.offset, e.event, e.data]), [
    [1, 'chat.message', { text: 'one' }],
    [2, 'chat.message', { text: 'two' }],
    [3, 'chat.destroy', null],
  ]);
  assert.deepEqual((await api.history(ch, { after: 1, limit: 1 })).events.map((e) => e.offset), [2]);
  assert.deepEqual((await api.history(ch, { before: 3 })).events.map((e) => e.offset), [1, 2]);
  assert.deepEqual((await api.history(unique('empty'))).events, []);
});

test('server errors are HeraldError with the server code, message and HTTP status', async () => {
  const api = new HeraldServer({ url: `http://127.0.0.1:${server.port}` });
  let err = await api.publish('bad channel', 'e', 1).catch((e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'bad_request');
  assert.equal(err.status, 400);
  assert.match(err.message, /^channel: invalid character ' '/);
  err = await api.publish('ok', 'bad event!', 1).catch((e) => e);
  assert.equal(err.code, 'bad_request');
  assert.match(err.message, /^event:/);
  err = await api.history('bad channel').catch((e) => e);
  assert.equal(err.code, 'bad_request');
  assert.equal(err.status, 400);
  err = await api.publish('ok', 'e', 'x'.repeat(2 * 1024 * 1024)).catch((e) => e);
  assert.equal(err.code, 'too_large');
  assert.equal(err.status, 413);
});

test('a server that is down: code unreachable, naming the address and the reason', async () => {
  const port = await freePort();
  const api = new HeraldServer({ url: `http://127.0.0.1:${port}` });
  const err = await api.publish('c', 'e', 1).catch((e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'unreachable');
  assert.match(err.message, new RegExp(`cannot reach http://127.0.0.1:${port}: ECONNREFUSED`));
});

test('a server that never answers: code timeout after timeoutMs', async () => {
  const sockets = [];
  const silent = net.createServer((s) => sockets.push(s)); // accepts, reads nothing, answers nothing
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  try {
    const api = new HeraldServer({ url: `http://127.0.0.1:${silent.address().port}`, timeoutMs: 300 });
    const t0 = Date.now();
    const err = await api.history('c').catch((e) => e);
    assert.equal(err.code, 'timeout');
    assert.match(err.message, /within 300 ms/);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }
});

test('apiKey is sent as a bearer token; a reply that is not the API JSON is bad_response', async () => {
  let seen = null;
  const fake = http.createServer((req, res) => {
    seen = req.headers.authorization;
    res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad gateway</h1>');
  });
  await new Promise((r) => fake.listen(0, '127.0.0.1', r));
  try {
    const api = new HeraldServer({ url: `http://127.0.0.1:${fake.address().port}`, apiKey: 'k-123' });
    const err = await api.publish('c', 'e', 1).catch((e) => e);
    assert.equal(seen, 'Bearer k-123');
    assert.equal(err.code, 'bad_response');
    assert.equal(err.status, 502);
  } finally {
    fake.close();
  }
});
