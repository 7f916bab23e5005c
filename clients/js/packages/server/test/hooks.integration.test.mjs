// End to end through the backend hooks: the real `herald` binary (HERALD_BIN
// or build/release/herald) with `[proxy]` pointing at a Node `http` server
// that turns each request into a Web Request and routes it to route handlers
// made with @herald/server's heraldHook (as Next.js would), the client being
// @herald/client over `ws`. Covers identity from a cookie through the
// connect hook (and its data both ways), a refused connect, the subscribe
// hook refusing a room (nothing subscribed), the publish hook replacing data
// (what subscribers and history get) and refusing (nothing stored), rpc
// typed per method with a refusal, and a wrong secret refused by the
// helpers themselves (the client gets `unavailable`). Skips, saying why,
// with a binary without `[proxy]`.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { Herald } from '@herald/client';
import WebSocket from 'ws';
import { allow, deny, disconnect, heraldHook, hookCookie } from '../dist/index.js';
import { Server, startIfSupported } from '../../client/test/support/server.mjs';
import { until, waitState } from '../../client/test/support/fake-socket.mjs';

const SECRET = 'route-handler-secret-42';
const FAST = { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0 };
const USERS = { 'sess-ann': { id: 'ann', name: 'Ann' }, 'sess-bob': { id: 'bob', name: 'Bob' } };
const calls = { connect: 0, subscribe: 0, publish: 0, rpc: 0 };

// The app's route handlers (app/api/herald/<hook>/route.ts in a Next.js app).
const routes = {
  '/api/herald/connect': heraldHook.connect(async (hook) => {
    calls.connect++;
    const user = USERS[hookCookie(hook.headers.cookie, 'session') ?? ''];
    if (!user) return deny('unauthorized', 'log in first');
    if (hook.data?.ban) return disconnect(4403, 'banned');
    return allow({ user: user.id, info: { name: user.name }, data: { greeting: `hi ${user.name}`, asked: hook.data } });
  }),
  '/api/herald/subscribe': heraldHook.subscribe(async (hook) => {
    calls.subscribe++;
    if (hook.channel.endsWith(':secret') && hook.user !== 'ann') return deny('forbidden', 'not a member');
    return allow({ data: { topic: `welcome to ${hook.channel}` } });
  }),
  '/api/herald/publish': heraldHook.publish(async (hook) => {
    calls.publish++;
    if (hook.data?.text?.includes('spam')) return deny('forbidden', 'no spam');
    return allow({ data: { ...hook.data, by: hook.user } });
  }),
  '/api/herald/rpc': heraldHook.rpc({
    'todos.add': async (data, hook) => {
      calls.rpc++;
      return { id: `${hook.user}-1`, title: data.title };
    },
    'admin.wipe': () => deny('forbidden', 'admins only'),
  }),
};

let backend;
let server;
let skip = false;
let base;
const clients = [];

// Node http -> Web Request -> route handler -> Web Response -> Node http.
function serve(req, res) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const route = routes[req.url];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    const request = new Request(`${base}${req.url}`, { method: req.method, headers: req.headers, body: Buffer.concat(chunks) });
    const response = await route(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
}

before(async () => {
  process.env.HERALD_HOOK_SECRET = SECRET;
  backend = http.createServer(serve);
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${backend.address().port}`;
  ({ server, skip } = await startIfSupported(
    new Server({
      config: `
[proxy]
connect_url = "${base}/api/herald/connect"
subscribe_url = "${base}/api/herald/subscribe"
publish_url = "${base}/api/herald/publish"
rpc_url = "${base}/api/herald/rpc"
static_headers = ["X-Herald-Secret: ${SECRET}"]
forward_cookies = ["session"]

[namespaces.room]
proxy_subscribe = true
proxy_publish = true
`,
    }),
    'backend hooks ([proxy])',
  ));
});

after(async () => {
  for (const h of clients) h.close();
  if (server) assert.deepEqual(await server.stop(), { code: 0, signal: null }, server.log);
  await new Promise((r) => backend.close(r));
  delete process.env.HERALD_HOOK_SECRET;
});

// A client whose upgrade request carries the session cookie (plus one the allow-list drops).
function client(session, opts = {}) {
  class CookieWebSocket extends WebSocket {
    constructor(url) {
      super(url, { perMessageDeflate: false, headers: session ? { cookie: `theme=x; session=${session}` } : {} });
    }
  }
  const h = new Herald({ url: server.wsUrl, WebSocket: CookieWebSocket, reconnect: FAST, requestTimeoutMs: 5000, ...opts });
  clients.push(h);
  return h;
}

test('connect: the user comes from the session cookie; data goes both ways; no cookie is refused and closed', async (t) => {
  if (skip) return t.skip(skip);
  const ann = client('sess-ann', { data: { tab: 1 } });
  ann.connect();
  await waitState(ann, 'connected');
  assert.equal(ann.user, 'ann');
  assert.deepEqual(ann.connectionData, { greeting: 'hi Ann', asked: { tab: 1 } });

  const anon = client(null, { reconnect: false });
  const errors = [];
  anon.on('error', (e) => errors.push(e));
  anon.connect();
  await waitState(anon, 'closed');
  assert.equal(anon.closeError.code, 'unauthorized');
  assert.equal(anon.closeError.message, 'log in first');

  // The backend's own close code: what it means is the app's to decide
  // (protocol.md section 9), so the client reports it (and, with
  // reconnect on, would try again with backoff).
  const banned = client('sess-bob', { data: { ban: true }, reconnect: false });
  const drops = [];
  banned.on('disconnected', (d) => drops.push(d));
  banned.connect();
  await until(() => drops.length === 1, 5000, 'the close');
  assert.deepEqual(drops[0], { code: 4403, reason: 'banned' });
  assert.equal(banned.state, 'disconnected');
  assert.equal(banned.user, null);
});

test('subscribe and publish hooks: a refused room subscribes nothing; data replaced for everyone; spam refused and not stored', async (t) => {
  if (skip) return t.skip(skip);
  const ann = client('sess-ann');
  const bob = client('sess-bob');
  ann.connect();
  bob.connect();
  await Promise.all([waitState(ann, 'connected'), waitState(bob, 'connected')]);
  const refused = [];
  const bobSecret = bob.subscribe('room:secret', { onEvent: () => assert.fail('delivered'), onError: (e) => refused.push(e) });
  await assert.rejects(bobSecret.ready, { code: 'forbidden', message: 'not a member' });
  const got = [];
  const annSub = ann.subscribe('room:secret', { onEvent: (e) => got.push(e) });
  await annSub.ready;
  const r = await ann.publish('room:secret', 'chat.message', { text: 'hello' });
  assert.equal(r.offset, 1);
  await until(() => got.length === 1, 5000, 'the event');
  assert.deepEqual(got[0].data, { text: 'hello', by: 'ann' }, 'the publish hook replaced the data');
  await assert.rejects(ann.publish('room:secret', 'chat.message', { text: 'buy spam' }), { code: 'forbidden', message: 'no spam' });
  const page = await ann.history('room:secret');
  assert.deepEqual(page.events.map((e) => e.data), [{ text: 'hello', by: 'ann' }], 'the refused publish was not stored');
  assert.equal(got.length, 1, 'nor delivered');
  assert.equal(refused.length, 1);
});

test('rpc through heraldHook.rpc: the method gets data and the user; a refusal reaches the client as its code', async (t) => {
  if (skip) return t.skip(skip);
  const bob = client('sess-bob');
  bob.connect();
  await waitState(bob, 'connected');
  assert.deepEqual(await bob.rpc('todos.add', { title: 'milk' }), { id: 'bob-1', title: 'milk' });
  await assert.rejects(bob.rpc('admin.wipe'), { code: 'forbidden', message: 'admins only' });
  await assert.rejects(bob.rpc('no.such'), { code: 'bad_request', message: 'unknown rpc method no.such' });
});

test('a request without the right secret never reaches the app function: the client gets unavailable', async (t) => {
  if (skip) return t.skip(skip);
  const bob = client('sess-bob');
  bob.connect();
  await waitState(bob, 'connected');
  const before = calls.rpc;
  process.env.HERALD_HOOK_SECRET = 'rotated-secret';
  try {
    await assert.rejects(bob.rpc('todos.add', { title: 'x' }), { code: 'unavailable' });
  } finally {
    process.env.HERALD_HOOK_SECRET = SECRET;
  }
  assert.equal(calls.rpc, before);
  assert.equal(bob.state, 'connected');
});
