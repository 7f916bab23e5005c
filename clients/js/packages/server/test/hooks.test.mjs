// Tests of @herald/server's backend hook helpers (src/hooks.ts), calling the
// route handlers with real Web Requests as Next.js does: the checks (POST,
// the shared secret compared in constant time, from the option or
// HERALD_HOOK_SECRET, a JSON body with the hook's fields) refuse before the
// app's function runs; allow / deny / disconnect become the JSON Herald
// reads; the rpc hook dispatches by method (unknown -> bad_request); a
// throwing function gives 500 (Herald: unavailable).
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { allow, deny, disconnect, heraldHook, hookCookie, readHookRequest, HookRequestError } from '../dist/index.js';

const SECRET = 's3cret-value';
const URL_ = 'http://backend.test/api/herald/hook';

function post(body, { secret = SECRET, header = 'x-herald-secret', method = 'POST', raw = false } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (secret !== null) headers[header] = secret;
  return new Request(URL_, { method, headers, body: method === 'GET' ? undefined : raw ? body : JSON.stringify(body) });
}

const CONNECT = { client: 'c1', transport: 'websocket', protocol: 'json', headers: { cookie: 'a=1; session=abc%20d' }, data: { invite: 'x7' }, ip: '127.0.0.1' };

async function answer(res) {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  return res.json();
}

afterEach(() => {
  delete process.env.HERALD_HOOK_SECRET;
});

test('connect: the function gets the checked body and the Request; allow({...}) becomes {result}', async () => {
  let seen;
  const POST = heraldHook.connect(
    async (hook, request) => {
      seen = { hook, request };
      return allow({ user: '42', info: { name: 'Ann' }, caps: { 'room:*': ['subscribe'] }, channels: ['user:42'], expire_at: 1767225600, data: { theme: 'dark' } });
    },
    { secret: SECRET },
  );
  const req = post(CONNECT);
  const body = await answer(await POST(req));
  assert.deepEqual(body, {
    result: { user: '42', info: { name: 'Ann' }, caps: { 'room:*': ['subscribe'] }, channels: ['user:42'], expire_at: 1767225600, data: { theme: 'dark' } },
  });
  assert.deepEqual(seen.hook, CONNECT);
  assert.equal(seen.request, req);
  assert.equal(hookCookie(seen.hook.headers.cookie, 'session'), 'abc d');
  assert.equal(hookCookie(seen.hook.headers.cookie, 'a'), '1');
  assert.equal(hookCookie(seen.hook.headers.cookie, 'none'), undefined);
  assert.equal(hookCookie(undefined, 'session'), undefined);
});

test('deny and disconnect become {error} and {disconnect}; a code outside 4000-4999 throws', async () => {
  const denied = heraldHook.connect(() => deny('unauthorized', 'log in first'), { secret: SECRET });
  assert.deepEqual(await answer(await denied(post(CONNECT))), { error: { code: 'unauthorized', message: 'log in first' } });
  const closed = heraldHook.connect(() => disconnect(4403, 'banned'), { secret: SECRET });
  assert.deepEqual(await answer(await closed(post(CONNECT))), { disconnect: { code: 4403, reason: 'banned' } });
  assert.deepEqual(JSON.parse(JSON.stringify(disconnect())), { disconnect: { code: 4003, reason: '' } });
  assert.throws(() => disconnect(1000, 'x'), RangeError);
  assert.throws(() => disconnect(5000, 'x'), RangeError);
});

test('refused before the function runs: wrong or missing secret 403, GET 405, not JSON or missing fields 400', async () => {
  let calls = 0;
  const POST = heraldHook.subscribe(() => (calls++, allow()), { secret: SECRET });
  const SUB = { client: 'c1', user: 'u', channel: 'room:1', data: null };
  const cases = [
    [post(SUB, { secret: 'wrong' }), 403],
    [post(SUB, { secret: `${SECRET}x` }), 403],
    [post(SUB, { secret: SECRET.slice(0, -1) }), 403],
    [post(SUB, { secret: '' }), 403],
    [post(SUB, { secret: null }), 403],
    [post(SUB, { method: 'GET' }), 405],
    [post('{"client": ', { raw: true }), 400],
    [post([1, 2]), 400],
    [post({ client: 'c1', user: 'u' }), 400],
    [post({ ...SUB, channel: 5 }), 400],
  ];
  for (const [req, status] of cases) {
    const res = await POST(req);
    assert.equal(res.status, status, `${req.method} ${req.headers.get('x-herald-secret')}`);
    assert.doesNotMatch(await res.text(), new RegExp(SECRET), 'the secret is never echoed');
  }
  assert.equal(calls, 0);
  assert.deepEqual(await answer(await POST(post(SUB))), { result: {} });
  assert.equal(calls, 1);
});

test('the secret: HERALD_HOOK_SECRET by default (read per request), another header, none configured fails closed, false turns it off', async () => {
  const POST = heraldHook.refresh((hook) => allow({ expire_at: hook.expire_at + 60 }));
  const REFRESH = { client: 'c1', user: 'u', expire_at: 100 };
  const none = await POST(post(REFRESH));
  assert.equal(none.status, 500);
  assert.match(await none.text(), /no secret configured/);
  process.env.HERALD_HOOK_SECRET = SECRET;
  assert.deepEqual(await answer(await POST(post(REFRESH))), { result: { expire_at: 160 } });
  assert.equal((await POST(post(REFRESH, { secret: 'nope' }))).status, 403);
  const custom = heraldHook.refresh(() => allow({ expire_at: 1 }), { secret: 'k', header: 'authorization' });
  assert.equal((await custom(post(REFRESH, { secret: 'k' }))).status, 403, 'not in x-herald-secret');
  assert.equal((await custom(post(REFRESH, { secret: 'k', header: 'authorization' }))).status, 200);
  const open = heraldHook.refresh(() => allow({ expire_at: 1 }), { secret: false });
  assert.equal((await open(post(REFRESH, { secret: null }))).status, 200);
});

test('publish: allow() publishes as sent, allow({data}) replaces it; subscribe data defaults to null', async () => {
  const POST = heraldHook.publish(
    (hook) => (hook.event === 'chat.message' ? allow({ data: { ...hook.data, by: hook.user } }) : allow()),
    { secret: SECRET },
  );
  const PUB = { client: 'c1', user: 'u7', channel: 'room:1', event: 'chat.message', data: { text: 'hi' } };
  assert.deepEqual(await answer(await POST(post(PUB))), { result: { data: { text: 'hi', by: 'u7' } } });
  assert.deepEqual(await answer(await POST(post({ ...PUB, event: 'typing' }))), { result: {} });
  const hook = await readHookRequest(post({ client: 'c', user: '', channel: 'x' }), 'subscribe', { secret: SECRET });
  assert.equal(hook.data, null);
  await assert.rejects(readHookRequest(post({}, { secret: 'x' }), 'rpc', { secret: SECRET }), (e) => e instanceof HookRequestError && e.response.status === 403);
});

test('rpc: one function per method gets data and returns the result data; unknown method bad_request; deny passes through', async () => {
  const calls = [];
  const POST = heraldHook.rpc(
    {
      'todos.add': async (data, hook) => {
        calls.push([data, hook.user, hook.method]);
        return { id: '1', title: data.title };
      },
      'todos.clear': () => undefined,
      'admin.wipe': (_data, hook) => (hook.user === 'root' ? 'wiped' : deny('forbidden', 'admins only')),
      'session.end': () => disconnect(4000, 'bye'),
      'raw': () => new Response('teapot', { status: 418 }),
      'error.like': () => ({ error: 'this is data, not a refusal' }),
    },
    { secret: SECRET },
  );
  const rpc = (method, data, user = 'u1') => POST(post({ client: 'c1', user, method, data }));
  assert.deepEqual(await answer(await rpc('todos.add', { title: 'milk' })), { result: { data: { id: '1', title: 'milk' } } });
  assert.deepEqual(calls, [[{ title: 'milk' }, 'u1', 'todos.add']]);
  assert.deepEqual(await answer(await rpc('todos.clear')), { result: { data: null } });
  assert.deepEqual(await answer(await rpc('admin.wipe', null)), { error: { code: 'forbidden', message: 'admins only' } });
  assert.deepEqual(await answer(await rpc('admin.wipe', null, 'root')), { result: { data: 'wiped' } });
  assert.deepEqual(await answer(await rpc('session.end')), { disconnect: { code: 4000, reason: 'bye' } });
  assert.equal((await rpc('raw')).status, 418);
  assert.deepEqual(await answer(await rpc('error.like')), { result: { data: { error: 'this is data, not a refusal' } } });
  assert.deepEqual(await answer(await rpc('nope')), { error: { code: 'bad_request', message: 'unknown rpc method nope' } });
  assert.deepEqual(await answer(await rpc('toString')), { error: { code: 'bad_request', message: 'unknown rpc method toString' } }, 'not an inherited property');
});

test('a function that throws, or returns no answer: 500 (Herald tells the client unavailable)', async () => {
  const errors = [];
  const original = console.error;
  console.error = (...a) => errors.push(a.join(' '));
  try {
    const throwing = heraldHook.connect(() => {
      throw new Error('db down');
    }, { secret: SECRET });
    assert.equal((await throwing(post(CONNECT))).status, 500);
    const empty = heraldHook.connect(() => ({ user: '1' }), { secret: SECRET });
    assert.equal((await empty(post(CONNECT))).status, 500);
    const failingRpc = heraldHook.rpc({ m: async () => Promise.reject(new Error('boom')) }, { secret: SECRET });
    assert.equal((await failingRpc(post({ client: 'c', user: '', method: 'm', data: null }))).status, 500);
  } finally {
    console.error = original;
  }
  assert.equal(errors.length, 3);
  assert.match(errors[0], /connect hook: the handler threw/);
});
