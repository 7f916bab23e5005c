// Browser end-to-end test of the chat demo across a server crash: the
// connection indicator shows the loss when the server is killed and the
// recovery when it is back on the same port; messages published over HTTP
// while the page was disconnected appear after the recovery, in order, once
// each, with a notice saying how many were recovered; a message written
// while disconnected shows as "sending…" (the client queues it) and goes out
// once, after the recovered ones. When the server lost the history (memory
// engine), the page says so and reloads the room.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { httpPublish, serverTest } from '../integration/node/lib/harness.mjs';
import {
  chatServer,
  dataDir,
  launchBrowser,
  openChat,
  roomName,
  screenshot,
  send,
  waitMessages,
  waitStatus,
} from './lib/chat.mjs';

describe('chat demo: reconnection', () => {
  const data = dataDir();
  let server;
  let browser;
  before(async () => {
    server = await chatServer({ name: 'e2e-reconnect', data }).start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stopChecked();
  });
  const t = (name, fn) => serverTest(() => server, name, { timeout: 90_000 }, fn);

  t('after a kill -9 and a restart the page recovers what it missed', async () => {
    const room = roomName();
    const channel = `chat:${room}`;
    const page = await openChat(browser, server, { name: 'Alice', room });
    await send(page, 'before the crash');
    await waitMessages(page, ['before the crash']);

    const port = server.port;
    server.kill();
    assert.notEqual(await server.waitExit(10_000), null, 'the server exited on SIGKILL');
    await waitStatus(page, 'Reconnecting…');
    // A message written meanwhile waits, shown as sending…
    await send(page, 'written offline');
    const log = page.getByRole('log', { name: 'Messages' });
    await log.getByRole('listitem').filter({ hasText: 'written offline' }).getByText('sending…').waitFor();
    await waitMessages(page, ['before the crash', 'written offline']);
    await screenshot(page, 'reconnect-lost');

    // While the page is cut off, a backend publishes over HTTP. The page's
    // server is still down, so these go through a second server on the same
    // data directory, on another port the page does not know.
    const backend = await chatServer({ name: 'e2e-backend', data }).start();
    try {
      for (let i = 1; i <= 3; i++) {
        const r = await httpPublish(backend, { channel, event: 'chat.message', data: { name: 'Backend', text: `missed ${i}` } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.offset, i + 1);
      }
    } finally {
      await backend.stopChecked();
    }

    await server.start({ port });
    assert.equal(server.port, port);
    await waitStatus(page, 'Connected');
    await page.getByText('Reconnected, 3 missed messages recovered.').waitFor();
    // The waiting message went out once connected, after the recovered ones.
    await log.getByText('sending…').waitFor({ state: 'detached' });
    await waitMessages(page, ['before the crash', 'missed 1', 'missed 2', 'missed 3', 'written offline']);
    assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), '', 'the box emptied once sent');

    // Live again: the next message arrives once, after the others.
    const r = await httpPublish(server, { channel, event: 'chat.message', data: { name: 'Backend', text: 'after' } });
    assert.equal(r.json.offset, 6);
    await waitMessages(page, ['before the crash', 'missed 1', 'missed 2', 'missed 3', 'written offline', 'after']);
    await screenshot(page, 'reconnect-recovered');

    assert.deepEqual(page.errors, [], 'no script errors on the page');
    await page.context().close();
  });
});

describe('chat demo: reconnection after the history was lost', () => {
  let server;
  let browser;
  before(async () => {
    server = await chatServer({ name: 'e2e-lost-history' }).start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stopChecked();
  });
  const t = (name, fn) => serverTest(() => server, name, { timeout: 90_000 }, fn);

  t('the page reloads the room when its missed messages cannot be recovered', async () => {
    const room = roomName();
    const page = await openChat(browser, server, { name: 'Alice', room });
    await send(page, 'lost with the memory engine');
    await waitMessages(page, ['lost with the memory engine']);

    const port = server.port;
    server.kill();
    await server.waitExit(10_000);
    await waitStatus(page, 'Reconnecting…');
    // A new process of the memory engine: a new epoch, an empty history.
    await server.start({ port });
    const r = await httpPublish(server, { channel: `chat:${room}`, event: 'chat.message', data: { name: 'Backend', text: 'new epoch' } });
    assert.equal(r.json.offset, 1);

    await waitStatus(page, 'Connected');
    await page.getByText('Reconnected; the room was reloaded from its history.').waitFor();
    await waitMessages(page, ['new epoch']);
    await screenshot(page, 'reconnect-history-lost');
    assert.deepEqual(page.errors, [], 'no script errors on the page');
    await page.context().close();
  });
});
