// Browser end-to-end tests of the chat demo with two users: history on
// joining, live messages both ways, typing indicators (shown to the other
// user only, gone when the message arrives or after a few seconds), one
// user on a phone-sized screen; who is online (each page sees the other,
// then sees it leave when it closes); and the reason shown when the server
// refuses the room. The real server, the built page, Chromium.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { serverTest } from '../integration/node/lib/harness.mjs';
import { PHONE, chatServer, dataDir, launchBrowser, onlineBar, openChat, roomName, screenshot, send, waitMessages, waitOnline } from './lib/chat.mjs';

describe('chat demo: two users in one room', () => {
  let server;
  let browser;
  before(async () => {
    server = await chatServer({ name: 'e2e-chat', data: dataDir() }).start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stopChecked();
  });
  const t = (name, fn) => serverTest(() => server, name, { timeout: 90_000 }, fn);

  t('they see each other’s messages and typing indicators', async () => {
    const room = roomName();
    const alice = await openChat(browser, server, { name: 'Alice', room });
    await send(alice, 'Hello from Alice');
    await waitMessages(alice, ['Hello from Alice']);
    // The box is emptied once the server acknowledged.
    await alice.waitForFunction(() => document.getElementById('message').value === '');

    // Bob joins later, on a phone: the room's history is there.
    const bob = await openChat(browser, server, { name: 'Bob', room, device: PHONE });
    await waitMessages(bob, ['Hello from Alice']);

    // Bob types: Alice sees it, Bob does not see himself typing.
    await bob.getByLabel('Message', { exact: true }).fill('Hi Alice');
    await alice.getByText('Bob is typing…').waitFor();
    assert.equal(await bob.getByText('is typing…').count(), 0, 'no typing indicator for oneself');
    await screenshot(alice, 'two-users-alice-desktop');

    // His message arrives and his typing indicator goes away with it.
    await bob.getByRole('button', { name: 'Send' }).click();
    await waitMessages(alice, ['Hello from Alice', 'Hi Alice']);
    await waitMessages(bob, ['Hello from Alice', 'Hi Alice']);
    await alice.getByText('Bob is typing…').waitFor({ state: 'detached', timeout: 2000 });

    // Alice types without sending: Bob sees it, and it expires by itself.
    await alice.getByLabel('Message', { exact: true }).fill('Nice to see');
    await bob.getByText('Alice is typing…').waitFor();
    await screenshot(bob, 'two-users-bob-phone');
    await bob.getByText('Alice is typing…').waitFor({ state: 'detached', timeout: 10_000 });

    assert.deepEqual([...alice.errors, ...bob.errors], [], 'no script errors on the pages');
    await alice.context().close();
    await bob.context().close();
  });
});

describe('chat demo: who is online', () => {
  let server;
  let browser;
  before(async () => {
    server = await chatServer({ name: 'e2e-online' }).start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stopChecked();
  });

  serverTest(() => server, 'two pages in one room see each other online; when one closes, the other sees it leave', { timeout: 90_000 }, async () => {
    const room = roomName();
    const alice = await openChat(browser, server, { name: 'Alice', room });
    // The demo has no sign-in: every tab is an anonymous "guest" for presence.
    await waitOnline(alice, ['guest (you)']);
    const bob = await openChat(browser, server, { name: 'Bob', room, device: PHONE });
    await waitOnline(bob, ['guest (you)', 'guest']);
    await waitOnline(alice, ['guest (you)', 'guest']);
    const notices = onlineBar(alice).getByRole('list', { name: 'Arrivals and departures' });
    await notices.getByText('guest joined').waitFor();
    assert.equal(await onlineBar(alice).getByRole('heading').textContent(), 'Online (2)');
    // Bob sees no notice about himself.
    assert.equal(await onlineBar(bob).getByText('joined').count(), 0);
    await screenshot(alice, 'online-two');

    await bob.context().close();
    await waitOnline(alice, ['guest (you)']);
    await notices.getByText('guest left').waitFor();
    assert.equal(await onlineBar(alice).getByRole('heading').textContent(), 'Online (1)');
    await screenshot(alice, 'online-left');
    assert.deepEqual(alice.errors, [], 'no script errors on the page');
    await alice.context().close();
  });
});

describe('chat demo: a room the server refuses', () => {
  let server;
  let browser;
  before(async () => {
    // Channel names of at most 20 bytes: 'chat:' and a 16-character room is too long.
    server = await chatServer({ name: 'e2e-refused', extra: { limits: { max_channel_length: 20 } } }).start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stopChecked();
  });

  serverTest(() => server, 'the page says why it cannot join', { timeout: 60_000 }, async () => {
    const page = await openChat(browser, server, { name: 'Alice', room: 'a-very-long-room' });
    const alert = page.getByRole('alert').filter({ hasText: 'Cannot join this room (bad_request)' });
    await alert.waitFor();
    assert.match(await alert.textContent(), /channel/);
    await screenshot(page, 'refused-room');
    await page.context().close();
  });
});
