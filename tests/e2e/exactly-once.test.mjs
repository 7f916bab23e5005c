// Browser end-to-end tests of exactly-once publishing (issue 12) in the chat
// demo, two users in one room on the sqlite engine, the server killed
// (SIGKILL) around a send and restarted on the same port and data directory:
// - killed before the send: the message shows as "sending…" while offline
//   (the client queues it), and goes out once reconnected;
// - killed just after the send, once the server stored it but before its
//   ack reached the page (the ack is dropped on the way, deterministically):
//   the client sends it again with the same idempotency key after the
//   restart, and the server answers with the original offset (replayed);
// - killed right after the click, with no interception (whichever of the
//   two happens).
// Each time: the message appears exactly once on both pages, the "sending…"
// marker goes away, the history over HTTP holds it once, and messages both
// ways afterwards go through.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { sleep, serverTest } from '../integration/node/lib/harness.mjs';
import { chatServer, dataDir, launchBrowser, messageTexts, openChat, roomName, screenshot, send, waitMessages, waitStatus } from './lib/chat.mjs';

/** Time the pages get after the message showed, to show it a second time if they were going to. */
const SETTLE_MS = 1500;

function parse(message) {
  try {
    return JSON.parse(typeof message === 'string' ? message : message.toString());
  } catch {
    return null;
  }
}

/** The "sending…" markers in the message list of `page`. */
function sendingMarkers(page) {
  return page.getByRole('log', { name: 'Messages' }).getByText('sending…');
}

/** The list item of the message `text` (every one, if shown more than once). */
function messageItems(page, text) {
  return page.getByRole('log', { name: 'Messages' }).getByRole('listitem').filter({ has: page.getByTestId('message-text').getByText(text, { exact: true }) });
}

async function until(what, fn, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A WebSocket route for a page that records the chat messages it publishes
 * and the acks it gets; `wire.dropAckOf(text, onDrop)`: the ack of the next
 * publish of `text` is not passed to the page, and `onDrop(ack)` runs instead.
 */
function watchedWire() {
  const wire = { publishes: [], acks: [], dropped: null, drop: null };
  wire.dropAckOf = (text, onDrop) => {
    wire.drop = { text, onDrop };
  };
  wire.route = (ws) => {
    const server = ws.connectToServer();
    const sent = new Map(); // request id -> chat message text, on this connection
    ws.onMessage((m) => {
      const msg = parse(m);
      if (msg?.type === 'publish' && msg.event === 'chat.message') {
        wire.publishes.push(msg);
        sent.set(msg.id, msg.data?.text);
      }
      server.send(m);
    });
    server.onMessage((m) => {
      const msg = parse(m);
      if (msg?.type === 'ack' && sent.has(msg.id)) {
        const text = sent.get(msg.id);
        if (wire.drop && wire.drop.text === text) {
          const { onDrop } = wire.drop;
          wire.drop = null;
          wire.dropped = { ...msg, text };
          onDrop(msg);
          return;
        }
        wire.acks.push({ ...msg, text });
      }
      ws.send(m);
    });
  };
  return wire;
}

describe('chat demo: exactly once across a server crash', () => {
  const data = dataDir();
  let server;
  let browser;
  before(async () => {
    server = await chatServer({ name: 'e2e-exactly-once', data }).start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stopChecked();
  });
  const t = (name, fn) => serverTest(() => server, name, { timeout: 120_000 }, fn);

  /** Alice (her connection watched) and Bob in a new room, after a message from each. */
  async function twoUsers() {
    const room = roomName();
    const wire = watchedWire();
    const alice = await openChat(browser, server, { name: 'Alice', room, routeWebSocket: wire.route });
    const bob = await openChat(browser, server, { name: 'Bob', room });
    await send(alice, 'hello');
    await waitMessages(alice, ['hello']);
    await waitMessages(bob, ['hello']);
    await send(bob, 'hi');
    await waitMessages(alice, ['hello', 'hi']);
    await waitMessages(bob, ['hello', 'hi']);
    return { channel: `chat:${room}`, alice, bob, wire };
  }

  async function killed() {
    assert.notEqual(await server.waitExit(10_000), null, 'the server exited on SIGKILL');
  }

  async function restart(port, pages) {
    await server.start({ port });
    assert.equal(server.port, port);
    for (const page of pages) await waitStatus(page, 'Connected');
  }

  async function history(channel) {
    const res = await fetch(server.url(`/api/channels/${encodeURIComponent(channel)}/history?limit=100`));
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return JSON.parse(text).events;
  }

  /**
   * The message `text` shows on both pages exactly once, acknowledged, and
   * stays so; the lists are `texts`; the history has it once. Returns its offset.
   */
  async function appearsOnce({ channel, alice, bob }, text, texts) {
    for (const page of [alice, bob]) {
      await messageItems(page, text).first().waitFor();
      await sendingMarkers(page).first().waitFor({ state: 'detached' });
    }
    await sleep(SETTLE_MS);
    for (const [who, page] of [['Alice', alice], ['Bob', bob]]) {
      assert.equal(await messageItems(page, text).count(), 1, `${who} shows "${text}" once`);
      assert.equal(await sendingMarkers(page).count(), 0, `${who} shows nothing as sending…`);
      assert.deepEqual(await messageTexts(page), texts, `${who}'s messages`);
    }
    const stored = (await history(channel)).filter((e) => e.data?.text === text);
    assert.equal(stored.length, 1, `"${text}" stored once: ${JSON.stringify(stored)}`);
    assert.deepEqual(
      (await history(channel)).map((e) => e.data.text),
      texts,
      'the history holds each message once, in order',
    );
    return stored[0].offset;
  }

  /** Messages both ways after the crash: nothing is stuck. */
  async function chatsOn({ alice, bob }, texts) {
    const all = [...texts];
    for (const [page, text] of [
      [bob, 'Bob after the restart'],
      [alice, 'Alice after the restart'],
      [bob, 'Bob again'],
    ]) {
      await send(page, text);
      all.push(text);
      await waitMessages(alice, all);
      await waitMessages(bob, all);
    }
    await sendingMarkers(alice).first().waitFor({ state: 'detached' });
    await sendingMarkers(bob).first().waitFor({ state: 'detached' });
    assert.equal(await alice.getByLabel('Message', { exact: true }).inputValue(), '', 'Alice’s box emptied');
    assert.equal(await bob.getByLabel('Message', { exact: true }).inputValue(), '', 'Bob’s box emptied');
  }

  async function closeAll({ alice, bob }) {
    assert.deepEqual([...alice.errors, ...bob.errors], [], 'no script errors on the pages');
    await alice.context().close();
    await bob.context().close();
  }

  t('a message sent while the server is down shows "sending…", then appears once for both users', async () => {
    const chat = await twoUsers();
    const { alice, bob, wire } = chat;
    const port = server.port;
    server.kill();
    await killed();
    await waitStatus(alice, 'Reconnecting…');
    await waitStatus(bob, 'Reconnecting…');

    await send(alice, 'sent while down');
    // Queued by the client: on screen once, as sending…, and no error.
    await messageItems(alice, 'sent while down').getByText('sending…').waitFor();
    await waitMessages(alice, ['hello', 'hi', 'sent while down']);
    assert.equal(await alice.locator('.composer-error').count(), 0, 'no error under the box');
    assert.deepEqual(await messageTexts(bob), ['hello', 'hi']);
    await screenshot(alice, 'exactly-once-sending');

    await restart(port, [alice, bob]);
    const offset = await appearsOnce(chat, 'sent while down', ['hello', 'hi', 'sent while down']);
    assert.equal(offset, 3);
    const acks = wire.acks.filter((a) => a.text === 'sent while down');
    assert.equal(acks.length, 1, `one ack: ${JSON.stringify(acks)}`);
    assert.equal(acks[0].offset, 3);
    await screenshot(alice, 'exactly-once-sent');

    await chatsOn(chat, ['hello', 'hi', 'sent while down']);
    await closeAll(chat);
  });

  t('a message stored just before a kill that lost its ack is sent again and appears once for both users', async () => {
    const chat = await twoUsers();
    const { alice, wire } = chat;
    const port = server.port;
    // The server stores it and answers; the ack is dropped and the server
    // killed at that moment, so the page never learns it was stored.
    wire.dropAckOf('lost ack', () => server.kill());
    await send(alice, 'lost ack');
    await until('the dropped ack', () => wire.dropped);
    await killed();
    await waitStatus(alice, 'Reconnecting…');
    // Not acknowledged: still sending…, shown once (its event, if it came,
    // is held back until the ack says whose it is).
    await messageItems(alice, 'lost ack').getByText('sending…').waitFor();
    assert.equal(await messageItems(alice, 'lost ack').count(), 1, 'shown once while not acknowledged');
    await screenshot(alice, 'exactly-once-lost-ack');

    await restart(port, [alice, chat.bob]);
    const offset = await appearsOnce(chat, 'lost ack', ['hello', 'hi', 'lost ack']);
    assert.equal(wire.dropped.offset, offset, 'the dropped ack had the stored offset');
    // Sent again after the restart with the same key: replayed, same offset.
    const publishes = wire.publishes.filter((p) => p.data?.text === 'lost ack');
    assert.ok(publishes.length >= 2, `sent again: ${JSON.stringify(publishes)}`);
    assert.equal(new Set(publishes.map((p) => p.idempotency_key)).size, 1, 'with the same key');
    assert.ok(publishes[0].idempotency_key, 'with a key');
    const acks = wire.acks.filter((a) => a.text === 'lost ack');
    assert.equal(acks.length, 1, `one ack reached the page: ${JSON.stringify(acks)}`);
    assert.deepEqual([acks[0].offset, acks[0].replayed], [offset, true], 'the ack after the restart is a replay');

    await chatsOn(chat, ['hello', 'hi', 'lost ack']);
    await closeAll(chat);
  });

  t('a message sent right before a kill appears once for both users', async () => {
    const chat = await twoUsers();
    const { alice, wire } = chat;
    const port = server.port;
    await send(alice, 'sent at the kill');
    server.kill();
    await killed();
    await restart(port, [alice, chat.bob]);
    const offset = await appearsOnce(chat, 'sent at the kill', ['hello', 'hi', 'sent at the kill']);
    assert.equal(offset, 3);
    const acks = wire.acks.filter((a) => a.text === 'sent at the kill');
    assert.equal(acks.length, 1, `one ack: ${JSON.stringify(acks)}`);
    assert.equal(acks[0].offset, offset);

    await chatsOn(chat, ['hello', 'hi', 'sent at the kill']);
    await closeAll(chat);
  });
});
