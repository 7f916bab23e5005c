// Integration tests of @herald/react: real components rendered with react-dom
// into a jsdom document, connected to the real `herald` binary (HERALD_BIN or
// build/release/herald) with the `ws` package as the WebSocket. Events
// published over HTTP reach the component; a channel change resubscribes;
// unmounting unsubscribes (checked on the server with its metrics and a
// witness subscriber); two components share a channel, each with its own
// history; a refused channel gives status error; the connection state
// follows a server killed and restarted.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import { JSDOM } from 'jsdom';
import WebSocket from 'ws';
import { Herald } from '@herald/client';
import { Server } from '../../client/test/support/server.mjs';
import { sleep, until } from '../../client/test/support/fake-socket.mjs';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.navigator = dom.window.navigator;
// Updates come from the socket, outside act(): let React schedule them normally.
globalThis.IS_REACT_ACT_ENVIRONMENT = false;

const { StrictMode, createElement: h, useState } = await import('react');
const { createRoot } = await import('react-dom/client');
const { flushSync } = await import('react-dom');
const { HeraldProvider, useConnectionState, useHerald, useRealtime } = await import('../dist/index.js');

const FAST = { initialDelayMs: 50, maxDelayMs: 300, factor: 2, jitter: 0.5 };
const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;

let server;
before(async () => {
  server = await new Server().start();
});
after(async () => {
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.log);
});

function mount(element) {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container);
  flushSync(() => root.render(element));
  return {
    container,
    render: (el) => flushSync(() => root.render(el)),
    unmount: () => {
      root.unmount();
      container.remove();
    },
    text: (sel) => container.querySelector(sel)?.textContent ?? null,
  };
}

/** Lists the events it receives as "channel/event/offset/data.n", and its status. */
function Feed({ channels, events, history, id = 'feed', log = [] }) {
  const [lines, setLines] = useState([]);
  const { status, error } = useRealtime({
    channels,
    events,
    history,
    onData: (e) => {
      log.push(e);
      setLines((l) => [...l, `${e.channel}/${e.event}/${e.offset ?? '-'}/${e.data?.n}`]);
    },
  });
  return h(
    'section',
    { id },
    h('p', { className: 'status' }, status),
    h('p', { className: 'error' }, error?.code ?? ''),
    h('ul', null, lines.map((l, i) => h('li', { key: i }, l))),
  );
}

function Status() {
  return h('p', { id: 'conn' }, useConnectionState());
}

const items = (view, id = 'feed') => [...view.container.querySelectorAll(`#${id} li`)].map((li) => li.textContent);

test('a component receives its history, then events published over HTTP; status and connection state render (StrictMode)', async () => {
  const ch = unique('chat:r');
  await server.publish({ channel: ch, event: 'chat.message', data: { n: 1 } });
  await server.publish({ channel: ch, event: 'chat.message', data: { n: 2 } });
  // StrictMode runs every effect twice (mount, clean up, mount): nothing may be delivered twice.
  const view = mount(
    h(
      StrictMode,
      null,
      h(HeraldProvider, { url: server.wsUrl, WebSocket, reconnect: FAST }, h(Status), h(Feed, { channels: [ch], history: 10 })),
    ),
  );
  await until(() => view.text('.status') === 'subscribed', 5000, 'subscribed');
  assert.equal(view.text('#conn'), 'connected');
  assert.deepEqual(items(view), [`${ch}/chat.message/1/1`, `${ch}/chat.message/2/2`]);
  await server.publish({ channel: ch, event: 'chat.message', data: { n: 3 } });
  await server.publish({ channel: ch, event: 'typing', data: { n: 4 }, ephemeral: true });
  await until(() => items(view).length === 4, 5000, 'live events');
  assert.deepEqual(items(view).slice(2), [`${ch}/chat.message/3/3`, `${ch}/typing/-/4`]);
  view.unmount();
});

test('changing channels resubscribes; unmounting unsubscribes (the server stops delivering) and closes the own client', async () => {
  const a = unique('a');
  const b = unique('b');
  const witness = new Herald({ url: server.wsUrl, WebSocket });
  witness.connect();
  const seen = [];
  await Promise.all([a, b].map((ch) => witness.subscribe(ch, { onEvent: (e) => seen.push(e.channel) }).ready));
  const connectionsBefore = await server.metric('herald_ws_connections');

  const view = mount(h(HeraldProvider, { url: server.wsUrl, WebSocket, reconnect: FAST }, h(Feed, { channels: [a] })));
  await until(() => view.text('.status') === 'subscribed', 5000, 'subscribed to a');
  assert.equal(await server.metric('herald_ws_connections'), connectionsBefore + 1);
  await server.publish({ channel: a, event: 'e', data: { n: 1 } });
  await until(() => items(view).length === 1, 5000, 'event on a');

  view.render(h(HeraldProvider, { url: server.wsUrl, WebSocket, reconnect: FAST }, h(Feed, { channels: [b] })));
  await until(() => view.text('.status') === 'subscribed', 5000, 'subscribed to b');
  // The server has dropped the subscription to a: a publish there is delivered to the witness only.
  await sleep(100); // the unsubscribe is fire-and-forget; let it land
  let deliveries = await server.metric('herald_deliveries_total');
  await server.publish({ channel: a, event: 'e', data: { n: 2 } });
  await server.publish({ channel: b, event: 'e', data: { n: 3 } });
  await until(() => items(view).length === 2, 5000, 'event on b');
  await until(() => seen.length === 3, 5000, 'the witness');
  assert.equal((await server.metric('herald_deliveries_total')) - deliveries, 3); // a: witness; b: witness + component
  assert.deepEqual(items(view), [`${a}/e/1/1`, `${b}/e/1/3`]);

  view.unmount();
  for (let i = 0; (await server.metric('herald_ws_connections')) !== connectionsBefore; i++) {
    assert.ok(i < 200, 'the provider closed its connection on unmount');
    await sleep(10);
  }
  deliveries = await server.metric('herald_deliveries_total');
  await server.publish({ channel: b, event: 'e', data: { n: 4 } });
  await until(() => seen.length === 4, 5000, 'the witness');
  assert.equal((await server.metric('herald_deliveries_total')) - deliveries, 1);
  witness.close();
});

test('two components on one channel share the subscription; each gets its own history, then the same live events', async () => {
  const ch = unique('shared');
  const client = new Herald({ url: server.wsUrl, WebSocket, reconnect: FAST });
  const first = mount(h(HeraldProvider, { client }, h(Feed, { channels: [ch], id: 'one' })));
  await until(() => first.text('.status') === 'subscribed', 5000, 'first subscribed');
  // Publish continuously while the second component mounts and loads its history.
  let n = 0;
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      n++;
      await server.publish({ channel: ch, event: 'e', data: { n } });
    }
  })();
  await until(() => items(first, 'one').length >= 20, 5000, '20 events');
  const second = mount(h(HeraldProvider, { client }, h(Feed, { channels: [ch], id: 'two', history: 5 })));
  await until(() => second.text('.status') === 'subscribed', 5000, 'second subscribed');
  await until(() => items(second, 'two').length >= 20, 5000, 'second live events');
  publishing = false;
  await publisher;
  await until(() => items(first, 'one').length === n && items(second, 'two').at(-1) === `${ch}/e/${n}/${n}`, 5000, 'all');
  const offsets = (id, view) => items(view, id).map((l) => Number(l.split('/')[2]));
  const one = offsets('one', first);
  const two = offsets('two', second);
  assert.deepEqual(one, Array.from({ length: n }, (_, i) => i + 1));
  // The second: 5 history events then live ones, contiguous, ending where the first ends.
  assert.deepEqual(two, Array.from({ length: two.length }, (_, i) => n - two.length + 1 + i));
  assert.ok(two[0] > 1, 'the history started in the middle of the stream');
  second.unmount();
  await server.publish({ channel: ch, event: 'e', data: { n: n + 1 } });
  await until(() => items(first, 'one').length === n + 1, 5000, 'first still subscribed');
  first.unmount();
  assert.equal(client.state, 'connected'); // an app's own client is not closed by the provider
  client.close();
});

test('connection state follows a server killed and restarted; onRecoveryFailed fires for the lost memory history', async () => {
  // The memory engine (not the default): its history and epoch die with the process.
  const own = await new Server({ env: { HERALD_ENGINE_TYPE: 'memory' } }).start();
  const ch = unique('restart');
  const states = [];
  const recoveryFailed = [];
  const received = [];
  function Watch() {
    const state = useConnectionState();
    states.push(state);
    const { status } = useRealtime({
      channels: [ch],
      onData: (e) => received.push(e.offset),
      onRecoveryFailed: (info) => recoveryFailed.push(info),
    });
    return h('p', { id: 'w' }, `${state} ${status}`);
  }
  const view = mount(h(HeraldProvider, { url: own.wsUrl, WebSocket, reconnect: FAST }, h(Watch)));
  try {
    await until(() => view.text('#w') === 'connected subscribed', 5000, 'connected');
    await own.publish({ channel: ch, event: 'e', data: { n: 1 } });
    await until(() => received.length === 1, 5000, 'the event before the kill');
    await own.kill();
    await until(() => /^(disconnected|connecting) (disconnected|connecting)$/.test(view.text('#w')), 5000, 'the loss');
    await sleep(300);
    await own.start();
    await until(() => view.text('#w') === 'connected subscribed', 10_000, 'back');
    assert.equal(recoveryFailed.length, 1);
    assert.equal(recoveryFailed[0].previous.offset, 1);
    assert.ok(states.includes('disconnected'));
  } finally {
    view.unmount();
    await own.stop();
  }
});

test('a channel the server refuses: status error with the server code; the other channels still deliver', async () => {
  const ok = unique('ok');
  const view = mount(
    h(HeraldProvider, { url: server.wsUrl, WebSocket, reconnect: FAST }, h(Feed, { channels: [ok, 'bad channel'] })),
  );
  try {
    await until(() => view.text('.status') === 'error', 5000, 'status error');
    assert.equal(view.text('.error'), 'bad_request');
    await server.publish({ channel: ok, event: 'e', data: { n: 1 } });
    await until(() => items(view).length === 1, 5000, 'the good channel');
    assert.deepEqual(items(view), [`${ok}/e/1/1`]);
  } finally {
    view.unmount();
  }
});

test('useHerald outside a provider says so', () => {
  function Lost() {
    useHerald();
    return null;
  }
  const errors = [];
  const onError = (e) => {
    errors.push(e.error?.message);
    e.preventDefault();
  };
  window.addEventListener('error', onError);
  const container = document.createElement('div');
  const root = createRoot(container, { onUncaughtError: (e) => errors.push(e.message) });
  flushSync(() => root.render(h(Lost)));
  window.removeEventListener('error', onError);
  assert.ok(errors.some((m) => /no <HeraldProvider>/.test(m)), JSON.stringify(errors));
  root.unmount();
});
