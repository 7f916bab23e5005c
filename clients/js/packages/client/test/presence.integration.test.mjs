// Integration tests of presence in @herald/client against the real `herald`
// binary (HERALD_BIN or build/release/herald), started with a temporary
// config: an HS256 key (tokens signed with the `jose` package), namespace
// `room` with presence, join_leave, max_users = 2 and destroy_access =
// "capability", `big` with presence_max_members = 2, `ttl` with
// channel_ttl_ms and an expire event; the default namespace has no presence.
// Checked: presence and presenceStats (two tabs of one user are two members
// and one user), join/leave with userJoined/userLeft, channel_full (the same
// user's second tab and a later retry admitted), destroy (the final event,
// then `destroyed`, no resubscribe, a new epoch), expiry, and a channel over
// presence_max_members. Skipped, saying why, with a binary that does not
// know the presence config keys yet.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, test } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { Herald } from '../dist/index.js';
import { Server, startIfSupported } from './support/server.mjs';
import { sleep, until, waitState } from './support/fake-socket.mjs';

const SECRET = 'presence-tests-secret-0123456789abcdef-0123';
const TTL_MS = 1500;
const CONFIG = `
[auth]
[[auth.keys]]
name = "app"
algorithms = ["HS256"]
secret = "${SECRET}"

[namespaces.room]
anonymous = true
presence = true
join_leave = true
max_users = 2
destroy_access = "capability"

[namespaces.big]
anonymous = true
presence = true
join_leave = true
presence_max_members = 2

[namespaces.ttl]
anonymous = true
presence = true
channel_ttl_ms = ${TTL_MS}
expire_event = "room.expired"
expire_data = '{"reason":"expired"}'
`;
const FAST = { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0 };
const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;
const key = new TextEncoder().encode(SECRET);

/** A connection token signed with jose: `sub`, and `info` / `caps` when given. */
function token(sub, claims = {}) {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('10m').sign(key);
}

const { server, skip } = await startIfSupported(new Server({ config: CONFIG }), 'presence');

const clients = [];
/** A connected client: anonymous, or as `sub` with `claims`. */
async function connect(sub = null, claims = {}) {
  const h = new Herald({
    url: server.wsUrl,
    WebSocket,
    reconnect: FAST,
    requestTimeoutMs: 5000,
    ...(sub === null ? {} : { token: () => token(sub, claims) }),
  });
  clients.push(h);
  h.connect();
  await waitState(h, 'connected');
  return h;
}

/** Subscribes `h` to `channel`, recording events, joins, leaves and errors in `log`. */
async function join(h, channel, log = { events: [], joins: [], leaves: [], errors: [] }) {
  const sub = h.subscribe(channel, { onEvent: (e) => log.events.push(e), onError: (e) => log.errors.push(e) });
  sub.on('join', (m) => log.joins.push(m));
  sub.on('leave', (m) => log.leaves.push(m));
  await sub.ready;
  return { sub, log };
}

const byClient = (a, b) => (a.client < b.client ? -1 : 1);

after(async () => {
  for (const h of clients) h.close();
  if (server) {
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, server.log);
  }
});

test('presence and presenceStats: a member per connection, two tabs of one user are one user; anonymous members have no user', { skip }, async () => {
  const ch = unique('room:p');
  const ana1 = await connect('ana', { info: { name: 'Ana' } });
  const ana2 = await connect('ana', { info: { name: 'Ana' } });
  const guest = await connect();
  for (const h of [ana1, ana2, guest]) await join(h, ch);
  const { members, complete } = await ana1.presence(ch);
  assert.equal(complete, true);
  assert.deepEqual(
    members.sort(byClient),
    [
      { client: ana1.clientId, user: 'ana', info: { name: 'Ana' } },
      { client: ana2.clientId, user: 'ana', info: { name: 'Ana' } },
      { client: guest.clientId },
    ].sort(byClient),
  );
  assert.deepEqual(await guest.presenceStats(ch), { clients: 3, users: 1 });
  // Being subscribed is not required.
  const outsider = await connect('zoe');
  assert.equal((await outsider.presence(ch)).members.length, 3);
  // Not enabled on the namespace: forbidden, naming the channel.
  const plain = unique('plain');
  let err = await outsider.presence(plain).catch((e) => e);
  assert.equal(err.code, 'forbidden');
  assert.ok(err.message.startsWith(`presence is not enabled on ${plain}`), err.message);
  err = await outsider.presenceStats(plain).catch((e) => e);
  assert.equal(err.code, 'forbidden');
  for (const h of [ana1, ana2, guest, outsider]) h.close();
});

test('join and leave: the own join first, userJoined only for a user’s first tab, userLeft for the last; no leave for the leaver', { skip }, async () => {
  const ch = unique('room:jl');
  const ana1 = await connect('ana', { info: { name: 'Ana' } });
  const { log } = await join(ana1, ch);
  await until(() => log.joins.length === 1, 5000, 'the own join');
  assert.deepEqual(log.joins[0], { channel: ch, client: ana1.clientId, user: 'ana', info: { name: 'Ana' }, userJoined: true });

  const ana2 = await connect('ana', { info: { name: 'Ana' } });
  const second = await join(ana2, ch);
  await until(() => log.joins.length === 2, 5000, 'the second tab');
  assert.deepEqual(log.joins[1], { channel: ch, client: ana2.clientId, user: 'ana', info: { name: 'Ana' }, userJoined: false });
  // The second tab sees its own join, not the earlier one (it asks presence for that).
  await until(() => second.log.joins.length === 1);
  assert.equal(second.log.joins[0].client, ana2.clientId);

  const bob = await connect('bob');
  await join(bob, ch);
  await until(() => log.joins.length === 3, 5000, 'bob');
  assert.deepEqual(log.joins[2], { channel: ch, client: bob.clientId, user: 'bob', userJoined: true });

  // A tab unsubscribes: ana is still there (userLeft false); it gets no leave of its own.
  second.sub.unsubscribe();
  await until(() => log.leaves.length === 1, 5000, 'the second tab leaves');
  assert.deepEqual(log.leaves[0], { channel: ch, client: ana2.clientId, user: 'ana', info: { name: 'Ana' }, userLeft: false });
  // A connection that closes leaves too: bob's last (only) connection.
  const bobId = bob.clientId;
  bob.close();
  await until(() => log.leaves.length === 2, 5000, 'bob leaves');
  assert.deepEqual(log.leaves[1], { channel: ch, client: bobId, user: 'bob', userLeft: true });
  await sleep(100);
  assert.deepEqual(second.log.leaves, []);
  assert.deepEqual((await ana1.presence(ch)).members, [{ client: ana1.clientId, user: 'ana', info: { name: 'Ana' } }]);
  // Anonymous members are each their own person: userJoined and userLeft are always true.
  const g1 = await connect();
  await join(g1, ch);
  await until(() => log.joins.length === 4);
  assert.deepEqual(log.joins[3], { channel: ch, client: g1.clientId, userJoined: true });
  const g1Id = g1.clientId;
  g1.close();
  await until(() => log.leaves.length === 3);
  assert.deepEqual(log.leaves[2], { channel: ch, client: g1Id, userLeft: true });
  for (const h of [ana1, ana2]) h.close();
});

test('channel_full: a third user is refused (final, not retried); the same user’s second tab is admitted; retrying after a leave works', { skip }, async () => {
  const ch = unique('room:full');
  const ana = await connect('ana');
  const bob = await connect('bob');
  await join(ana, ch);
  const bobSub = await join(bob, ch);
  const carol = await connect('carol');
  const errors = [];
  carol.on('error', (e) => errors.push(e.code));
  const refused = carol.subscribe(ch, { onEvent() {} });
  const err = await refused.ready.catch((e) => e);
  assert.equal(err.code, 'channel_full');
  assert.match(err.message, /full/);
  assert.equal(refused.active, false);
  assert.equal(carol.state, 'connected');
  // Anonymous connections count as one user each: refused too.
  const guest = await connect();
  assert.equal((await guest.subscribe(ch, { onEvent() {} }).ready.catch((e) => e)).code, 'channel_full');
  // Another tab of a user already in: admitted.
  const ana2 = await connect('ana');
  await join(ana2, ch);
  assert.deepEqual(await ana.presenceStats(ch), { clients: 3, users: 2 });
  // Not retried by the client: still 3 connections a while later.
  await sleep(300);
  assert.deepEqual(errors, ['channel_full']);
  assert.equal((await ana.presenceStats(ch)).clients, 3);
  // Bob leaves; the app tries again: admitted.
  bobSub.sub.unsubscribe();
  for (let i = 0; (await ana.presenceStats(ch)).users !== 1; i++) {
    assert.ok(i < 100, 'bob gone');
    await sleep(50);
  }
  await join(carol, ch);
  assert.deepEqual(await ana.presenceStats(ch), { clients: 3, users: 2 });
  for (const h of [ana, ana2, bob, carol, guest]) h.close();
});

test('destroy over the WebSocket: the final event, then destroyed (error and unsubscribed), no resubscribe; history gone, new epoch', { skip }, async () => {
  const ch = unique('room:d');
  const ana = await connect('ana', { caps: { 'room:*': ['subscribe', 'publish', 'history', 'presence', 'destroy'] } });
  const bob = await connect('bob');
  const a = await join(ana, ch);
  const b = await join(bob, ch);
  const unsubscribed = [];
  bob.on('unsubscribed', (i) => unsubscribed.push(i));
  await ana.publish(ch, 'chat.message', { text: 'one' });
  await ana.publish(ch, 'chat.message', { text: 'two' });
  await until(() => b.log.events.length === 2);
  const oldEpoch = b.sub.epoch;
  // Without the capability: forbidden, nothing happens.
  const err = await bob.destroy(ch).catch((e) => e);
  assert.equal(err.code, 'forbidden');
  assert.equal(b.sub.active, true);

  const { epoch } = await ana.destroy(ch, { event: 'chat.destroy', data: { by: 'ana' } });
  assert.equal(typeof epoch, 'string');
  assert.notEqual(epoch, oldEpoch);
  for (const { log, sub } of [a, b]) {
    await until(() => log.errors.length === 1, 5000, 'destroyed');
    const final = log.events.at(-1);
    assert.equal(final.event, 'chat.destroy');
    assert.deepEqual(final.data, { by: 'ana' });
    assert.equal(final.offset, undefined);
    assert.equal(final.from, undefined);
    assert.equal(log.errors[0].code, 'destroyed');
    assert.equal(sub.active, false);
  }
  assert.deepEqual(unsubscribed, [{ channel: ch, reason: 'destroyed' }]);
  // Presence emptied without leave messages; nobody subscribed again.
  await sleep(300);
  assert.deepEqual(b.log.leaves, []);
  assert.deepEqual(await bob.presenceStats(ch), { clients: 0, users: 0 });
  // History deleted; the channel starts again in the new epoch.
  const hist = await bob.history(ch);
  assert.deepEqual(hist.events, []);
  assert.equal(hist.offset, 0);
  assert.equal(hist.epoch, epoch);
  const again = await join(bob, ch);
  assert.equal(again.sub.epoch, epoch);
  assert.deepEqual(await bob.publish(ch, 'chat.message', { text: 'new' }), { offset: 1, replayed: false });
  ana.close();
  bob.close();
});

test('expiry: channel_ttl_ms after the first event the channel is destroyed with its expire event and reason expired', { skip }, async () => {
  const ch = unique('ttl:x');
  const h = await connect();
  const { sub, log } = await join(h, ch);
  const ended = [];
  h.on('unsubscribed', (i) => ended.push(i));
  const t0 = Date.now();
  await h.publish(ch, 'chat.message', { text: 'soon gone' });
  await until(() => log.errors.length === 1, TTL_MS + 5000, 'expired');
  assert.ok(Date.now() - t0 >= TTL_MS - 100, `expired after ${Date.now() - t0} ms`);
  assert.deepEqual(
    log.events.map((e) => [e.event, e.offset, e.data]),
    [
      ['chat.message', 1, { text: 'soon gone' }],
      ['room.expired', undefined, { reason: 'expired' }],
    ],
  );
  assert.equal(log.errors[0].code, 'expired');
  assert.deepEqual(ended, [{ channel: ch, reason: 'expired' }]);
  assert.equal(sub.active, false);
  const hist = await h.history(ch);
  assert.deepEqual([hist.offset, hist.events], [0, []]);
  assert.notEqual(hist.epoch, sub.epoch);
  h.close();
});

test('over presence_max_members: presence is incomplete, stats have no users, no join/leave is sent', { skip }, async () => {
  const ch = unique('big:x');
  const first = await connect('u1');
  const { log } = await join(first, ch);
  await until(() => log.joins.length === 1);
  const others = [await connect('u2'), await connect('u3')];
  for (const h of others) await join(h, ch);
  await sleep(200);
  assert.deepEqual(await first.presence(ch), { members: [], complete: false });
  assert.deepEqual(await first.presenceStats(ch), { clients: 3 });
  // The third member's join is never sent (the second's may be dropped too when it was still
  // queued in the owner's loop turn that went over the limit).
  const joined = log.joins.map((j) => j.user);
  assert.ok(JSON.stringify(joined) === '["u1","u2"]' || JSON.stringify(joined) === '["u1"]', JSON.stringify(joined));
  others[1].close();
  await sleep(200);
  assert.deepEqual(log.leaves, []);
  for (const h of [first, others[0]]) h.close();
});
