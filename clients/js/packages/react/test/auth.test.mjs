// Authentication in @herald/react, rendered with react-dom into jsdom
// against the client's fake WebSocket: the provider's `getToken` is the
// client's `token` (called for every connect, the latest function after a
// re-render), and useRealtime's `getToken` gives the subscription token of
// a private channel; a terminal close (4003) shows as `closed` with the
// client's closeError.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JSDOM } from 'jsdom';
import { fakeSocketClass, until } from '../../client/test/support/fake-socket.mjs';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.navigator = dom.window.navigator;
globalThis.IS_REACT_ACT_ENVIRONMENT = false;

const { createElement: h } = await import('react');
const { createRoot } = await import('react-dom/client');
const { flushSync } = await import('react-dom');
const { HeraldProvider, useConnectionState, useHerald, useRealtime } = await import('../dist/index.js');

const FAST = { initialDelayMs: 5, maxDelayMs: 20, factor: 2, jitter: 0 };

function mount(element) {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container);
  flushSync(() => root.render(element));
  return {
    render: (el) => flushSync(() => root.render(el)),
    unmount: () => {
      root.unmount();
      container.remove();
    },
    text: (sel) => container.querySelector(sel)?.textContent ?? null,
  };
}

function Private({ channel, getToken }) {
  const { status, error } = useRealtime({ channels: [channel], onData: () => {}, getToken });
  const herald = useHerald();
  const state = useConnectionState();
  return h('p', { id: 'p' }, `${state} ${status} ${error?.code ?? ''} ${herald.user ?? '-'} ${herald.closeError?.code ?? ''}`);
}

test('provider getToken: sent in connect, the latest function used at the next connect; useRealtime getToken for a private channel; 4003 shows closed', async () => {
  const WS = fakeSocketClass();
  WS.onConnect = () => ({ user: 'ann' });
  const connectTokens = [];
  const subTokens = [];
  const app = (version) =>
    h(
      HeraldProvider,
      { url: 'ws://fake/ws', WebSocket: WS, reconnect: FAST, getToken: async () => `conn-v${version}` },
      h(Private, { channel: 'dm:ann', getToken: async (ch) => `sub-${ch}-v${version}` }),
    );
  const view = mount(app(1));
  try {
    const sock = await until(() => WS.last?.sentOfType('subscribe')[0] && WS.last, 3000, 'subscribe');
    const req = sock.sentOfType('subscribe')[0];
    connectTokens.push(sock.sent[0].token);
    subTokens.push(req.token);
    sock.serverSend({ type: 'subscribed', id: req.id, channel: 'dm:ann', epoch: 'E', offset: 0, events: [] });
    await until(() => view.text('#p') === 'connected subscribed  ann ', 3000, `subscribed (${view.text('#p')})`);

    view.render(app(2)); // new functions: no reconnect, no resubscribe, but used next time
    assert.equal(WS.instances.length, 1);
    sock.serverClose(1006);
    const sock2 = await until(() => WS.instances.length === 2 && WS.last.sentOfType('subscribe')[0] && WS.last, 3000, 'resubscribe');
    connectTokens.push(sock2.sent[0].token);
    subTokens.push(sock2.sentOfType('subscribe')[0].token);
    assert.deepEqual(connectTokens, ['conn-v1', 'conn-v2']);
    assert.deepEqual(subTokens, ['sub-dm:ann-v1', 'sub-dm:ann-v2']);

    sock2.serverClose(4003, 'banned');
    await until(() => view.text('#p') === 'closed closed  - disconnected_by_server', 3000, `closed (${view.text('#p')})`);
    assert.equal(WS.instances.length, 2);
  } finally {
    view.unmount();
  }
});

test('a private channel whose token is refused: status error forbidden', async () => {
  const WS = fakeSocketClass();
  const view = mount(
    h(HeraldProvider, { url: 'ws://fake/ws', WebSocket: WS, reconnect: FAST }, h(Private, { channel: 'dm:bob', getToken: () => 'nope' })),
  );
  try {
    const sock = await until(() => WS.last?.sentOfType('subscribe')[0] && WS.last, 3000, 'subscribe');
    const req = sock.sentOfType('subscribe')[0];
    assert.equal(req.token, 'nope');
    sock.serverSend({ type: 'error', id: req.id, code: 'forbidden', message: 'subscribe dm:bob: forbidden' });
    await until(() => view.text('#p').startsWith('connected error forbidden'), 3000, `error (${view.text('#p')})`);
  } finally {
    view.unmount();
  }
});
