// Integration tests of @herald/client's backend-hook side against the real
// `herald` binary (HERALD_BIN or build/release/herald) with `[proxy]`
// pointing at a real Node `http` backend in this process: connect data to
// the connect hook and its `data` back as `connectionData`; `rpc()` round
// trips (the backend sees the user, method, data and the static secret
// header), the backend's refusal as a HeraldError code, a request schema
// violation refused by the server without reaching the backend, and an rpc
// pending when its socket dies rejected with `disconnected` and never sent
// again after the reconnect. Skips (saying why) with a binary without
// `[proxy]`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { Herald } from '../dist/index.js';
import { Server, startIfSupported } from './support/server.mjs';
import { until, waitState } from './support/fake-socket.mjs';

const FAST = { initialDelayMs: 50, maxDelayMs: 300, factor: 2, jitter: 0.5 };
const SECRET = 'hook-secret-123';

class RecordingWebSocket extends WebSocket {
  static all = [];
  constructor(url) {
    super(url, { perMessageDeflate: false });
    RecordingWebSocket.all.push(this);
  }
}

// The app's backend: every hook request it got, and how it answers each.
const got = []; // {path, headers, body}
const held = []; // rpc responses held by the 'hold' method: call to answer
let backend;
let server;
let skip = false;
const clients = [];

function answer(req, body) {
  if (req.url === '/connect') {
    if (body.data?.deny) return { error: { code: 'forbidden', message: 'no entry' } };
    return { result: { user: `u-${body.data?.invite ?? 'anon'}`, data: { theme: 'dark', invite: body.data?.invite ?? null } } };
  }
  if (req.url === '/rpc') {
    if (body.method === 'echo') return { result: { data: { user: body.user, got: body.data } } };
    if (body.method === 'todos.add') return { result: { data: { id: 1, title: body.data.title } } };
    if (body.method === 'admin.wipe') return { error: { code: 'forbidden', message: 'admins only' } };
    if (body.method === 'nothing') return { result: {} };
  }
  return { error: { code: 'bad_request', message: `unknown ${req.url} ${body.method ?? ''}` } };
}

before(async () => {
  backend = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      const body = JSON.parse(text);
      got.push({ path: req.url, headers: req.headers, body });
      const reply = (obj) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      if (req.url === '/rpc' && body.method === 'hold') held.push(() => reply({ result: { data: 'late' } }));
      else reply(answer(req, body));
    });
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${backend.address().port}`;
  const s = new Server({
    config: [
      '[proxy]',
      `connect_url = "${base}/connect"`,
      `rpc_url = "${base}/rpc"`,
      `static_headers = ["X-Herald-Secret: ${SECRET}"]`,
      'rpc_schema = "rpc.json"',
      'timeout_ms = 5000',
      '',
    ].join('\n'),
  });
  fs.writeFileSync(
    path.join(s.tmpdir, 'rpc.json'),
    JSON.stringify({
      'todos.add': {
        request: { type: 'object', required: ['title'], properties: { title: { type: 'string' } } },
        response: { type: 'object', required: ['id'] },
      },
    }),
  );
  ({ server, skip } = await startIfSupported(s, 'backend hooks ([proxy])'));
});

after(async () => {
  for (const h of clients) h.close();
  for (const release of held) release();
  if (server) assert.deepEqual(await server.stop(), { code: 0, signal: null }, server.log);
  await new Promise((r) => backend.close(r));
});

function client(opts = {}) {
  const h = new Herald({ url: server.wsUrl, WebSocket: RecordingWebSocket, reconnect: FAST, requestTimeoutMs: 5000, ...opts });
  clients.push(h);
  return h;
}

const rpcsTo = (method) => got.filter((g) => g.path === '/rpc' && g.body.method === method);

test('connect data reaches the connect hook; its result data comes back as connectionData', async (t) => {
  if (skip) return t.skip(skip);
  const h = client({ data: { invite: 'x7' } });
  const infos = [];
  h.on('connected', (i) => infos.push(i));
  h.connect();
  await waitState(h, 'connected');
  const req = got.find((g) => g.path === '/connect' && g.body.data?.invite === 'x7');
  assert.ok(req, 'the hook got the data');
  assert.equal(req.headers['x-herald-secret'], SECRET);
  assert.equal(h.user, 'u-x7');
  assert.deepEqual(h.connectionData, { theme: 'dark', invite: 'x7' });
  assert.deepEqual(infos[0].data, { theme: 'dark', invite: 'x7' });
});

test('rpc round trip: the backend sees user, method and data; its result data resolves the promise', async (t) => {
  if (skip) return t.skip(skip);
  const h = client({ data: { invite: 'rt' } });
  h.connect();
  await waitState(h, 'connected');
  assert.deepEqual(await h.rpc('echo', { n: [1, 2] }), { user: 'u-rt', got: { n: [1, 2] } });
  const req = rpcsTo('echo').at(-1);
  assert.equal(req.body.client, h.clientId);
  assert.equal(req.headers['x-herald-secret'], SECRET);
  assert.deepEqual(await h.rpc('todos.add', { title: 'milk' }), { id: 1, title: 'milk' });
  assert.equal(await h.rpc('nothing'), null, 'a result without data: null');
});

test('the backend refusing an rpc rejects with its code; a request schema violation never reaches it', async (t) => {
  if (skip) return t.skip(skip);
  const h = client();
  h.connect();
  await waitState(h, 'connected');
  await assert.rejects(h.rpc('admin.wipe'), { name: 'HeraldError', code: 'forbidden', message: 'admins only' });
  const before = rpcsTo('todos.add').length;
  const err = await h.rpc('todos.add', { title: 42 }).then(() => assert.fail('resolved'), (e) => e);
  assert.equal(err.code, 'validation_failed');
  assert.ok(err.details, 'with details');
  assert.equal(rpcsTo('todos.add').length, before, 'the backend was not asked');
  assert.equal(h.state, 'connected');
});

test('an rpc pending when the socket dies rejects with disconnected and is not sent again after the reconnect', async (t) => {
  if (skip) return t.skip(skip);
  const h = client();
  h.connect();
  await waitState(h, 'connected');
  const p = h.rpc('hold', { order: 1 });
  await until(() => rpcsTo('hold').length === 1, 5000, 'the backend got the rpc');
  const first = h.clientId;
  RecordingWebSocket.all.at(-1).terminate(); // this client's socket: the last opened
  await assert.rejects(p, (e) => e.code === 'disconnected' && /not sent again/.test(e.message));
  await until(() => h.state === 'connected' && h.clientId !== first, 10_000, 'reconnected');
  assert.deepEqual(await h.rpc('echo', 'after'), { user: 'u-anon', got: 'after' });
  held.shift()(); // the backend answers the first rpc at last: nobody is waiting
  assert.equal(rpcsTo('hold').length, 1, 'the rpc reached the backend once');
  await assert.rejects(client().rpc('echo', 1), { code: 'disconnected' }, 'not connected: refused at once');
});
