// Browser end-to-end tests of the Next.js private chat: the app built with
// `next build` and run with `next start`, next to the real herald binary
// started with the example's herald.toml (sqlite engine), and Debian's
// Chromium. Two visitors (two browser contexts, so two visitor cookies)
// chat both ways and see each other typing and online; a third is refused
// ("room is full"); destroying sends both home ("room destroyed"); a Herald
// restart during the chat loses and duplicates nothing; and, next to a
// second herald whose rooms live 8 s, expiry sends both home ("room
// expired").
// Run: npm run build && npm test (HERALD_BIN: the binary, default
// ../../build/release/herald).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Herald, NextApp, createRoom, joinRoom, launchBrowser, screenshot, send, visitor, waitConnected, waitMessages } from './lib.mjs';

const CHANNEL = (url) => `room:${url.split('/').pop()}`;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Runs `fn`; on failure adds the output of the processes. */
function withLogs(procs, name, options, fn) {
  return test(name, options, async () => {
    try {
      await fn();
    } catch (e) {
      const logs = procs().filter(Boolean).map((p) => p.tail()).join('\n');
      const wrapped = new Error(`${e?.message ?? e}\n${logs}`, { cause: e });
      wrapped.stack = `${wrapped.message}\n${e?.stack ?? ''}`;
      throw wrapped;
    }
  });
}

describe('a room of the normal configuration (10 minutes)', () => {
  let herald;
  let app;
  before(async () => {
    herald = await new Herald({ name: 'herald' }).start();
    app = await new NextApp({ herald }).start();
  });
  after(async () => {
    await app?.stop();
    const exit = await herald?.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, 'herald exits 0 on SIGTERM');
  });
  const t = (name, fn) => withLogs(() => [herald, app], name, { timeout: 120_000 }, fn);

  t('two visitors chat both ways, see each other typing and online; a third is refused', async () => {
    const alice = await visitor(browser);
    const url = await createRoom(alice, app, 'Alice');
    const countdown = alice.getByRole('timer', { name: 'Time left' });
    assert.match(await countdown.textContent(), /^Expires in (10:00|9:[0-5]\d)$/);

    const bob = await visitor(browser);
    await joinRoom(bob, url, 'Bob');
    for (const page of [alice, bob]) await page.getByText('Alice created the room.').waitFor();
    await alice.getByTestId('online').getByText('Bob', { exact: true }).waitFor();
    await alice.getByTestId('online').getByText('Alice (you)').waitFor();
    await bob.getByTestId('online').getByText('Alice', { exact: true }).waitFor();
    await bob.getByTestId('online').getByText('Bob (you)').waitFor();

    await send(alice, 'Hello Bob');
    await waitMessages(alice, ['Hello Bob']);
    await waitMessages(bob, ['Hello Bob']);
    await bob.getByLabel('Message', { exact: true }).fill('Hi Alice, typing');
    await alice.getByTestId('typing').getByText('Bob is typing…').waitFor();
    assert.equal(await bob.getByTestId('typing').textContent(), '', 'no typing indicator for oneself');
    await screenshot(alice, 'alice-sees-bob-typing');
    await bob.getByRole('button', { name: 'Send' }).click();
    for (const page of [alice, bob]) await waitMessages(page, ['Hello Bob', 'Hi Alice, typing']);
    await alice.getByTestId('typing').getByText('Bob is typing…').waitFor({ state: 'detached', timeout: 3000 });
    assert.equal(await alice.getByTestId('message').last().locator('.who').textContent(), 'Bob:');
    assert.equal(await bob.getByTestId('message').last().locator('.who').textContent(), 'You:');

    // A third visitor with the link: Herald answers channel_full.
    const carol = await visitor(browser);
    await joinRoom(carol, url, 'Carol', { connected: false });
    await carol.getByRole('alert').getByText('This room is full').waitFor();
    await screenshot(carol, 'carol-room-full');
    // Alice in a second tab is still Alice: admitted.
    const aliceTab = await alice.context().newPage();
    await aliceTab.goto(url);
    await waitConnected(aliceTab);
    await waitMessages(aliceTab, ['Hello Bob', 'Hi Alice, typing']);
    const online = await alice.getByTestId('online').locator('li').allTextContents();
    assert.deepEqual(online.sort(), ['Alice (you)', 'Bob'], 'Carol never appeared; Alice is listed once');
    const stats = await herald.api(`/api/channels/${encodeURIComponent(CHANNEL(url))}/presence-stats`);
    assert.deepEqual({ clients: stats.clients, users: stats.users }, { clients: 3, users: 2 });

    assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors, ...(aliceTab.errors ?? [])], [], 'no script errors');
    for (const page of [alice, bob, carol]) await page.context().close();
  });

  t('a Herald restart during the chat loses no message and shows each once on both sides', async () => {
    const alice = await visitor(browser);
    const url = await createRoom(alice, app, 'Alice');
    const bob = await visitor(browser);
    await joinRoom(bob, url, 'Bob');
    await send(alice, 'before 1');
    await waitMessages(bob, ['before 1']);
    await send(bob, 'before 2');
    for (const page of [alice, bob]) await waitMessages(page, ['before 1', 'before 2']);

    // Down: both pages notice; what they send meanwhile waits in the client's offline queue.
    const exit = await herald.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    for (const page of [alice, bob]) await page.getByRole('status', { name: 'Connection' }).filter({ hasText: 'Reconnecting…' }).waitFor();
    await send(alice, 'while down 1');
    await send(bob, 'while down 2');
    await herald.start(); // same port, same data directory

    for (const page of [alice, bob]) await waitConnected(page);
    await send(alice, 'after 1');
    await send(bob, 'after 2');
    const expected = ['before 1', 'before 2', 'while down 1', 'while down 2', 'after 1', 'after 2'];
    const stored = async () => {
      const { events } = await herald.api(`/api/channels/${encodeURIComponent(CHANNEL(url))}/history?limit=100`);
      return events.filter((e) => e.event === 'chat.message').map((e) => e.data.text);
    };
    // The order of the two offline messages is whichever page reconnected first; the same on both sides.
    const deadline = Date.now() + 20_000;
    while ((await stored()).length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const order = await stored();
    assert.deepEqual([...order].sort(), [...expected].sort(), 'every message stored exactly once');
    for (const page of [alice, bob]) await waitMessages(page, order);
    await screenshot(bob, 'bob-after-restart');
    assert.deepEqual([...alice.errors, ...bob.errors], [], 'no script errors');
    for (const page of [alice, bob]) await page.context().close();
  });

  t('destroying the room sends both home with "room destroyed"', async () => {
    const alice = await visitor(browser);
    const url = await createRoom(alice, app, 'Alice');
    const bob = await visitor(browser);
    await joinRoom(bob, url, 'Bob');
    await send(alice, 'bye soon');
    await waitMessages(bob, ['bye soon']);

    await bob.getByRole('button', { name: 'Destroy room' }).click();
    for (const page of [alice, bob]) await page.getByTestId('room-ended').getByText('Room destroyed by Bob.').waitFor();
    await screenshot(alice, 'alice-room-destroyed');
    for (const page of [alice, bob]) {
      await page.waitForURL((u) => u.pathname === '/' && u.searchParams.get('ended') === 'destroyed');
      await page.getByTestId('ended').getByText('The room was destroyed.').waitFor();
    }
    // The history is gone: the link now leads home.
    await alice.goto(url);
    await alice.waitForURL((u) => u.pathname === '/' && u.searchParams.get('ended') === 'missing');
    const { events } = await herald.api(`/api/channels/${encodeURIComponent(CHANNEL(url))}/history`);
    assert.deepEqual(events, []);
    assert.deepEqual([...alice.errors, ...bob.errors], [], 'no script errors');
    for (const page of [alice, bob]) await page.context().close();
  });
});

describe('a room that expires (channel_ttl_ms = 8000)', () => {
  const TTL_MS = 8000;
  let herald;
  let app;
  before(async () => {
    herald = await new Herald({ name: 'herald-8s', channelTtlMs: TTL_MS }).start();
    app = await new NextApp({ herald, roomTtlMs: TTL_MS, name: 'next-8s' }).start();
  });
  after(async () => {
    await app?.stop();
    await herald?.stop();
  });

  withLogs(() => [herald, app], 'expiry sends both home with "room expired"', { timeout: 90_000 }, async () => {
    const alice = await visitor(browser);
    const url = await createRoom(alice, app, 'Alice');
    const created = Date.now();
    const bob = await visitor(browser);
    await joinRoom(bob, url, 'Bob');
    assert.match(await bob.getByRole('timer', { name: 'Time left' }).textContent(), /^Expires in 0:0[1-8]$/);
    await send(bob, 'quick, before it goes');
    await waitMessages(alice, ['quick, before it goes']);

    for (const page of [alice, bob]) await page.getByTestId('room-ended').getByText('Room expired').waitFor();
    const endedAfter = Date.now() - created;
    assert.ok(endedAfter >= TTL_MS - 1000, `ended after ${endedAfter} ms, not before the TTL`);
    await screenshot(bob, 'bob-room-expired');
    for (const page of [alice, bob]) {
      await page.waitForURL((u) => u.pathname === '/' && u.searchParams.get('ended') === 'expired');
      await page.getByTestId('ended').getByText('The room expired.').waitFor();
    }
    assert.deepEqual([...alice.errors, ...bob.errors], [], 'no script errors');
    for (const page of [alice, bob]) await page.context().close();
  });
});
