// usePresence of @herald/react, rendered with react-dom into jsdom: against
// the client's fake WebSocket for the exact orderings (presence asked after
// subscribed; join/leave before and after the reply, even in the same read;
// asked again after a reconnect; destroyed, channel_full, forbidden,
// presence_max_members; one subscription shared with useRealtime), and
// against the real `herald` binary with presence and join_leave on a
// namespace (skipped, saying why, by a binary that does not know that
// config yet): two clients see each other, one leaves, the channel is
// destroyed.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, test } from 'node:test';
import { JSDOM } from 'jsdom';
import WebSocket from 'ws';
import { Herald } from '@herald/client';
import { fakeSocketClass, sleep, until } from '../../client/test/support/fake-socket.mjs';
import { Server, startIfSupported } from '../../client/test/support/server.mjs';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.navigator = dom.window.navigator;
globalThis.IS_REACT_ACT_ENVIRONMENT = false;

const { StrictMode, createElement: h } = await import('react');
const { createRoot } = await import('react-dom/client');
const { flushSync } = await import('react-dom');
const { HeraldProvider, usePresence, useRealtime } = await import('../dist/index.js');

const FAST = { initialDelayMs: 5, maxDelayMs: 20, factor: 2, jitter: 0 };

function mount(element) {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container);
  flushSync(() => root.render(element));
  return {
    unmount: () => {
      root.unmount();
      container.remove();
    },
    text: (sel) => container.querySelector(sel)?.textContent ?? null,
  };
}

/** Renders usePresence's result as JSON: member clients, users, complete, error code, loading. */
function Who({ channel, id = 'who', notices = null }) {
  const p = usePresence(channel, {
    onJoin: (m) => notices?.push(`join ${m.client} ${m.userJoined}`),
    onLeave: (m) => notices?.push(`leave ${m.client} ${m.userLeft}`),
  });
  const shown = { members: p.members.map((m) => m.client), users: p.users, complete: p.complete, error: p.error?.code ?? null, loading: p.loading };
  return h('p', { id }, JSON.stringify(shown));
}

const read = (view, id = 'who') => JSON.parse(view.text(`#${id}`));

/** Waits until the rendered state has `expected`'s fields. */
async function waitShown(view, expected, what, id = 'who') {
  const match = () => Object.entries(expected).every(([k, v]) => JSON.stringify(read(view, id)[k]) === JSON.stringify(v));
  await until(match, 3000, `${what}: ${view.text(`#${id}`)}`);
}

function fakeApp(WS, ...children) {
  return h(StrictMode, null, h(HeraldProvider, { url: 'ws://fake/ws', WebSocket: WS, reconnect: FAST, requestTimeoutMs: 1000 }, ...children));
}

/** Answers the pending subscribe of `channel` on `sock`, then returns the `presence` request that must follow. */
async function subscribed(sock, channel, offset = 0) {
  const req = await until(() => sock.sentOfType('subscribe').find((m) => m.channel === channel), 3000, `subscribe ${channel}`);
  sock.serverSend({ type: 'subscribed', id: req.id, channel, epoch: 'E', offset, events: [] });
  return req;
}

const join = (channel, client, user, userJoined = true) => ({ type: 'join', channel, client, ...(user ? { user } : {}), user_joined: userJoined });
const leave = (channel, client, user, userLeft = true) => ({ type: 'leave', channel, client, ...(user ? { user } : {}), user_left: userLeft });

test('usePresence asks presence after subscribed and applies join/leave around the reply exactly (also in the same read)', async () => {
  const WS = fakeSocketClass();
  WS.onConnect = () => ({ client: 'me', user: 'ann' });
  const notices = [];
  const view = mount(fakeApp(WS, h(Who, { channel: 'room:1', notices })));
  try {
    assert.deepEqual(read(view), { members: [], users: [], complete: true, error: null, loading: true });
    const sock = await until(() => WS.last, 3000, 'socket');
    await subscribed(sock, 'room:1');
    sock.serverSend(join('room:1', 'me', 'ann'));
    const ask = await until(() => sock.sentOfType('presence')[0], 3000, 'presence asked');
    assert.equal(ask.channel, 'room:1');
    assert.equal(sock.sentOfType('subscribe').length, 1, 'StrictMode: one subscription');
    // bob joins before the reply: it is in the reply as well.
    sock.serverSend(join('room:1', 'b1', 'bob'));
    await waitShown(view, { members: ['me', 'b1'], loading: true }, 'live joins before the reply');
    // The reply, then in the same read: ann's second tab joins, bob leaves.
    sock.serverSend({ type: 'presence', id: ask.id, channel: 'room:1', members: [{ client: 'b1', user: 'bob' }, { client: 'me', user: 'ann' }], complete: true });
    sock.serverSend(join('room:1', 'me2', 'ann', false));
    sock.serverSend(leave('room:1', 'b1', 'bob'));
    await waitShown(view, { members: ['me', 'me2'], users: ['ann'], loading: false, error: null }, 'reply plus the later changes');
    await sleep(30);
    assert.equal(sock.sentOfType('presence').length, 1);
    sock.serverSend(join('room:1', 'g1'));
    await waitShown(view, { members: ['me', 'me2', 'g1'], users: ['ann'] }, 'an anonymous member');
    assert.deepEqual(notices, ['join me true', 'join b1 true', 'join me2 false', 'leave b1 true', 'join g1 true']);
  } finally {
    view.unmount();
  }
});

test('after a reconnect: the list is kept but loading, and presence is asked again once resubscribed', async () => {
  const WS = fakeSocketClass();
  const view = mount(fakeApp(WS, h(Who, { channel: 'room:1' })));
  try {
    let sock = await until(() => WS.last, 3000, 'socket');
    await subscribed(sock, 'room:1');
    let ask = await until(() => sock.sentOfType('presence')[0]);
    sock.serverSend({ type: 'presence', id: ask.id, channel: 'room:1', members: [{ client: 'c1' }, { client: 'x', user: 'bob' }], complete: true });
    await waitShown(view, { members: ['c1', 'x'], loading: false }, 'first list');
    const dropped = sock;
    sock.serverClose(1006);
    await waitShown(view, { members: ['c1', 'x'], loading: true }, 'stale while disconnected');
    sock = await until(() => WS.last !== dropped && WS.last, 3000, 'reconnect');
    const req = await subscribed(sock, 'room:1');
    assert.ok(req.recover, 'resubscribed with recover');
    ask = await until(() => sock.sentOfType('presence')[0], 3000, 'presence asked again');
    sock.serverSend({ type: 'presence', id: ask.id, channel: 'room:1', members: [{ client: 'c2' }, { client: 'y', user: 'eve' }], complete: true });
    await waitShown(view, { members: ['c2', 'y'], users: ['eve'], loading: false }, 'the new list');
  } finally {
    view.unmount();
  }
});

test('destroyed (and expired): the members are cleared and error says why; the channel is not subscribed again', async () => {
  for (const reason of ['destroyed', 'expired']) {
    const WS = fakeSocketClass();
    const view = mount(fakeApp(WS, h(Who, { channel: 'room:1' })));
    try {
      const sock = await until(() => WS.last, 3000, 'socket');
      await subscribed(sock, 'room:1');
      const ask = await until(() => sock.sentOfType('presence')[0]);
      sock.serverSend({ type: 'presence', id: ask.id, channel: 'room:1', members: [{ client: 'c1' }, { client: 'c2' }], complete: true });
      await waitShown(view, { members: ['c1', 'c2'] }, 'list');
      sock.serverSend({ type: 'event', channel: 'room:1', event: 'bye', ts: 1, data: null });
      sock.serverSend({ type: 'unsubscribed', channel: 'room:1', reason });
      await waitShown(view, { members: [], users: [], error: reason, loading: false }, reason);
      await sleep(30);
      assert.equal(sock.sentOfType('subscribe').length, 1);
    } finally {
      view.unmount();
    }
  }
});

test('errors: channel_full refuses the subscription, presence forbidden is reported; over presence_max_members: complete false', async () => {
  const WS = fakeSocketClass();
  const view = mount(fakeApp(WS, h(Who, { channel: 'room:full', id: 'full' }), h(Who, { channel: 'plain', id: 'plain' }), h(Who, { channel: 'big:1', id: 'big' })));
  try {
    const sock = await until(() => WS.last, 3000, 'socket');
    const full = await until(() => sock.sentOfType('subscribe').find((m) => m.channel === 'room:full'));
    sock.serverSend({ type: 'error', id: full.id, code: 'channel_full', message: 'channel room:full is full (max_users 2)' });
    await waitShown(view, { error: 'channel_full', loading: false, members: [] }, 'full', 'full');

    await subscribed(sock, 'plain');
    let ask = await until(() => sock.sentOfType('presence').find((m) => m.channel === 'plain'));
    sock.serverSend({ type: 'error', id: ask.id, code: 'forbidden', message: 'presence is not enabled on plain' });
    await waitShown(view, { error: 'forbidden', loading: false }, 'forbidden', 'plain');

    await subscribed(sock, 'big:1');
    ask = await until(() => sock.sentOfType('presence').find((m) => m.channel === 'big:1'));
    sock.serverSend(join('big:1', 'late', 'x')); // sent before the channel went over the limit: stale
    sock.serverSend({ type: 'presence', id: ask.id, channel: 'big:1', members: [], complete: false });
    await waitShown(view, { complete: false, members: [], loading: false, error: null }, 'counts only', 'big');
    sock.serverSend(join('big:1', 'other', 'y'));
    await sleep(30);
    assert.deepEqual(read(view, 'big').members, []);
    assert.equal(sock.sentOfType('subscribe').filter((m) => m.channel === 'room:full').length, 1, 'channel_full is not retried');
  } finally {
    view.unmount();
  }
});

test('usePresence and useRealtime on one channel share its subscription; a presence hook mounted later asks at once', async () => {
  const WS = fakeSocketClass();
  const client = new Herald({ url: 'ws://fake/ws', WebSocket: WS, reconnect: FAST });
  const got = [];
  function Feed() {
    const { status } = useRealtime({ channels: ['room:1'], onData: (e) => got.push(e.offset) });
    return h('p', { id: 'feed' }, status);
  }
  const feed = mount(h(HeraldProvider, { client }, h(Feed)));
  let who = null;
  try {
    const sock = await until(() => WS.last, 3000, 'socket');
    await subscribed(sock, 'room:1', 3);
    await until(() => feed.text('#feed') === 'subscribed');
    assert.equal(sock.sentOfType('presence').length, 0, 'useRealtime alone does not ask presence');
    who = mount(h(HeraldProvider, { client }, h(Who, { channel: 'room:1' })));
    const ask = await until(() => sock.sentOfType('presence')[0], 3000, 'presence asked at once');
    sock.serverSend({ type: 'presence', id: ask.id, channel: 'room:1', members: [{ client: 'c9' }], complete: true });
    await waitShown(who, { members: ['c9'], loading: false }, 'members');
    sock.serverSend({ type: 'event', channel: 'room:1', event: 'e', offset: 4, ts: 1, data: null });
    await until(() => got.includes(4));
    assert.equal(sock.sentOfType('subscribe').length, 1, 'one subscription for both hooks');
    // The presence hook goes away: the subscription stays for useRealtime.
    who.unmount();
    who = null;
    assert.equal(sock.sentOfType('unsubscribe').length, 0);
  } finally {
    who?.unmount();
    feed.unmount();
    client.close();
  }
});

// --- against the real server

const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;
const CONFIG = `
[namespaces.room]
presence = true
join_leave = true
max_users = 10
`;
const { server, skip } = await startIfSupported(new Server({ config: CONFIG }), 'presence');
after(async () => {
  if (server) {
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, server.log);
  }
});

test('real server: two clients see each other, one leaves, the channel is destroyed over HTTP', { skip }, async () => {
  const ch = unique('room:r');
  const app = (id) => h(HeraldProvider, { url: server.wsUrl, WebSocket, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, h(Who, { channel: ch, id }));
  const one = mount(app('one'));
  const two = mount(app('two'));
  let twoMounted = true;
  try {
    await waitShown(one, { loading: false }, 'one loaded', 'one');
    await until(() => read(one, 'one').members.length === 2 && read(two, 'two').members.length === 2, 5000, 'both see both');
    assert.deepEqual(read(one, 'one').members.sort(), read(two, 'two').members.sort());
    assert.deepEqual(read(one, 'one').users, []); // anonymous
    two.unmount();
    twoMounted = false;
    await until(() => read(one, 'one').members.length === 1, 5000, `the other left: ${one.text('#one')}`);
    const res = await fetch(server.url(`/api/channels/${encodeURIComponent(ch)}`), { method: 'DELETE', signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    await waitShown(one, { members: [], error: 'destroyed', loading: false }, 'destroyed', 'one');
  } finally {
    one.unmount();
    if (twoMounted) two.unmount();
  }
});
