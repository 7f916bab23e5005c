// Unit tests of @herald/client's backend-hook side against a fake WebSocket:
// `rpc()` (reply matched by id, the server's error codes, its own timeout,
// refused while not connected, failed and never sent again when the
// connection drops, bad arguments refused before sending) and the connect
// hook's `data` both ways (`data` option sent in `connect`, `connected.data`
// exposed as `connectionData` and in the `connected` event).
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

const rpcSent = (WS) => WS.last.sentOfType('rpc');

test('rpc sends {method, data} and resolves with the rpc_result data matched by id', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 2000 });
  const p1 = herald.rpc('todos.add', { title: 'milk' });
  const p2 = herald.rpc('todos.count');
  const [m1, m2] = rpcSent(WS);
  assert.deepEqual({ ...m1, id: 0 }, { type: 'rpc', method: 'todos.add', data: { title: 'milk' }, id: 0 });
  assert.deepEqual({ ...m2, id: 0 }, { type: 'rpc', method: 'todos.count', data: null, id: 0 }, 'no data: null');
  WS.last.serverSend({ type: 'rpc_result', id: m2.id, data: 3 });
  WS.last.serverSend({ type: 'rpc_result', id: m1.id, data: { id: 7, title: 'milk' } });
  assert.deepEqual(await p1, { id: 7, title: 'milk' });
  assert.equal(await p2, 3);
  const p3 = herald.rpc('todos.clear', {});
  WS.last.serverSend({ type: 'rpc_result', id: rpcSent(WS)[2].id }); // no data field: null
  assert.equal(await p3, null);
  herald.close();
});

test('rpc rejects with a HeraldError carrying the server error code, message and details', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 2000 });
  const p = herald.rpc('todos.add', { title: 5 });
  const details = [{ path: '/title', error: 'must be string' }];
  WS.last.serverSend({ type: 'error', id: rpcSent(WS)[0].id, code: 'validation_failed', message: 'bad data', details });
  const err = await p.then(() => assert.fail('resolved'), (e) => e);
  assert.ok(err instanceof HeraldError);
  assert.equal(err.code, 'validation_failed');
  assert.equal(err.message, 'bad data');
  assert.deepEqual(err.details, details);
  const q = herald.rpc('admin.wipe');
  WS.last.serverSend({ type: 'error', id: rpcSent(WS)[1].id, code: 'forbidden', message: 'admins only' });
  await assert.rejects(q, { code: 'forbidden', message: 'admins only' });
  assert.equal(herald.state, 'connected');
  herald.close();
});

test('rpc: options.timeoutMs rejects with timeout, a late reply is ignored, the connection stays', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 5000 });
  const t0 = Date.now();
  const p = herald.rpc('slow', 1, { timeoutMs: 50 });
  await assert.rejects(p, (e) => e instanceof HeraldError && e.code === 'timeout' && /rpc slow: no reply within 50 ms/.test(e.message));
  assert.ok(Date.now() - t0 < 1000, 'its own timeout, not requestTimeoutMs');
  WS.last.serverSend({ type: 'rpc_result', id: rpcSent(WS)[0].id, data: 'late' });
  assert.equal(herald.state, 'connected');
  // the default timeout is requestTimeoutMs
  const r = await connected({ requestTimeoutMs: 60 });
  await assert.rejects(r.herald.rpc('slow'), { code: 'timeout' });
  herald.close();
  r.herald.close();
});

test('rpc while not connected rejects at once with disconnected (nothing queued), closed after close()', async () => {
  const { WS, herald } = make({}, { autoConnect: false });
  await assert.rejects(herald.rpc('m', 1), (e) => e.code === 'disconnected' && /not connected/.test(e.message));
  herald.connect();
  await until(() => WS.last && WS.last.sent.length === 1); // connect sent, no connected yet
  await assert.rejects(herald.rpc('m', 1), { code: 'disconnected' });
  WS.last.serverSend({ type: 'connected', id: WS.last.sent[0].id, client: 'c1', ping: 25, version: '1' });
  await waitState(herald, 'connected');
  assert.equal(rpcSent(WS).length, 0, 'the refused rpcs were not sent after connecting');
  // Still "connected" but the socket already closing (its close event not yet in): not sent, said so.
  WS.last.readyState = 2;
  await assert.rejects(herald.rpc('m', 1), (e) => e.code === 'disconnected' && /^rpc m: not connected/.test(e.message));
  herald.close();
  await assert.rejects(herald.rpc('m', 1), { code: 'closed' });
});

test('a drop fails pending rpcs with disconnected and does not send them again after the reconnect', async () => {
  const { WS, herald } = await connected({ requestTimeoutMs: 5000 });
  const p = herald.rpc('orders.place', { sku: 'x' });
  const first = WS.last;
  assert.equal(rpcSent(WS).length, 1);
  first.serverClose(1006, 'gone');
  const err = await p.then(() => assert.fail('resolved'), (e) => e);
  assert.equal(err.code, 'disconnected');
  assert.match(err.message, /rpc orders\.place: the connection was lost before the reply .*not sent again/);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  await sleep(30);
  assert.equal(WS.last.sentOfType('rpc').length, 0, 'not resent on the new connection');
  // close() with an rpc pending: closed
  const q = herald.rpc('orders.place', { sku: 'y' });
  herald.close();
  await assert.rejects(q, { code: 'closed' });
});

test('rpc refuses a bad method or data that is not JSON without sending anything', async () => {
  const { WS, herald } = await connected();
  await assert.rejects(herald.rpc(''), { code: 'bad_request' });
  await assert.rejects(herald.rpc('x'.repeat(129)), { code: 'bad_request' });
  await assert.rejects(herald.rpc(42), { code: 'bad_request' });
  await assert.rejects(herald.rpc('m', { n: 1n }), (e) => e.code === 'bad_request' && /rpc m: data cannot be sent as JSON/.test(e.message));
  const cyclic = {};
  cyclic.self = cyclic;
  await assert.rejects(herald.rpc('m', cyclic), { code: 'bad_request' });
  assert.equal(rpcSent(WS).length, 0);
  herald.close();
});

test('connect data: the option is sent in every connect; a function is called again for each', async () => {
  let n = 0;
  const { WS, herald } = await connected({ data: async () => ({ invite: 'x7', n: ++n }) });
  assert.deepEqual(WS.instances[0].sent[0].data, { invite: 'x7', n: 1 });
  WS.last.serverClose(1006, 'gone');
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  assert.deepEqual(WS.instances[1].sent[0].data, { invite: 'x7', n: 2 });
  herald.close();
  const plain = await connected({ data: ['a'] });
  assert.deepEqual(plain.WS.last.sent[0].data, ['a']);
  plain.herald.close();
  const none = await connected();
  assert.equal('data' in none.WS.last.sent[0], false, 'no data option: no data field');
  none.herald.close();
});

test('connect data that throws or is not JSON: data_failed, no socket opened, retried with backoff', async () => {
  let calls = 0;
  const { WS, herald } = make({
    data: () => {
      calls++;
      if (calls === 1) throw new Error('no invite');
      if (calls === 2) return { n: 1n };
      return { ok: true };
    },
  });
  const errors = [];
  herald.on('error', (e) => errors.push(e));
  herald.connect();
  await waitState(herald, 'connected');
  assert.deepEqual(errors.map((e) => e.code), ['data_failed', 'data_failed']);
  assert.match(errors[0].message, /no invite/);
  assert.equal(WS.instances.length, 1, 'the failed attempts opened no socket');
  assert.deepEqual(WS.last.sent[0].data, { ok: true });
  herald.close();
});

test('connected.data is exposed as connectionData and in the connected event, per connection', async () => {
  const WS = fakeSocketClass();
  let reply = { data: { theme: 'dark' } };
  WS.onConnect = () => reply;
  const herald = new Herald({ url: 'ws://fake/ws', WebSocket: WS, reconnect: FAST });
  const infos = [];
  herald.on('connected', (i) => infos.push(i));
  assert.equal(herald.connectionData, undefined);
  herald.connect();
  await waitState(herald, 'connected');
  assert.deepEqual(herald.connectionData, { theme: 'dark' });
  assert.deepEqual(infos[0].data, { theme: 'dark' });
  reply = {}; // the next connection gets none
  WS.last.serverClose(1006, 'gone');
  await until(() => herald.state === 'disconnected' || WS.instances.length === 2);
  await until(() => WS.instances.length === 2 && herald.state === 'connected');
  assert.equal(herald.connectionData, undefined);
  assert.equal('data' in infos[1], false);
  reply = { data: null }; // null is a value
  WS.last.serverClose(1006, 'gone');
  await until(() => WS.instances.length === 3 && herald.state === 'connected');
  assert.equal(herald.connectionData, null);
  assert.equal(infos[2].data, null);
  herald.close();
  assert.equal(herald.connectionData, undefined);
});
