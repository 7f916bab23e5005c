// History and recovery on a real herald server (Node `ws` clients), with
// [history] size=50 and max_request=20: the `history` command with
// limit/before/after, subscribe with `history: N`, recovery with
// {epoch, offset} (recovered true with exactly the missed events, false for
// an unknown epoch or dropped offsets), ephemeral events never stored, and
// history/recovery racing a concurrent publish stream without gap or duplicate.
// On the memory engine, set explicitly (the default is sqlite, whose history
// and recovery the Python sqlite tests and history_http.test.mjs cover).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, HeraldServer, httpPublish, serverTest, tomlConfig, unique } from './lib/harness.mjs';

const SIZE = 50;
const MAX_REQUEST = 20;

let server;
before(async () => {
  server = await new HeraldServer({
    name: 'history',
    config: tomlConfig({ engine: { type: 'memory' }, history: { size: SIZE, max_request: MAX_REQUEST } }),
  }).start();
});
after(async () => {
  await server?.stopChecked();
});

const t = (name, fn, timeout = 30_000) => serverTest(() => server, name, { timeout }, fn);
const range = (from, to) => Array.from({ length: Math.max(0, to - from + 1) }, (_, k) => from + k);

// Publishes events data=i, event=`h.<i>` for i in [from, to] and checks the acks.
async function publishN(client, channel, from, to) {
  for (let i = from; i <= to; i++) {
    const ack = await client.call({ type: 'publish', channel, event: `h.${i}`, data: { i } });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.offset, i, `publish ${i}: ${JSON.stringify(ack)}`);
  }
}

function checkStored(events, offsets, { from } = {}) {
  assert.deepEqual(
    events.map((e) => e.offset),
    offsets,
    'event offsets',
  );
  for (const e of events) {
    assert.equal(e.type, 'event', JSON.stringify(e));
    assert.equal(e.event, `h.${e.offset}`, JSON.stringify(e));
    assert.deepEqual(e.data, { i: e.offset }, JSON.stringify(e));
    assert.equal(typeof e.ts, 'number', JSON.stringify(e));
    if (from !== undefined) assert.equal(e.from?.client, from, JSON.stringify(e));
  }
}

async function history(c, channel, params = {}) {
  const reply = await c.call({ type: 'history', channel, ...params });
  assert.equal(reply.type, 'history', JSON.stringify(reply));
  assert.equal(reply.channel, channel);
  assert.equal(typeof reply.epoch, 'string');
  assert.ok(Array.isArray(reply.events), JSON.stringify(reply));
  return reply;
}

t('history of a channel without events', async () => {
  const c = await Client.connected(server);
  const ch = unique('empty');
  const sub = await c.subscribe(ch);
  const reply = await history(c, ch);
  assert.equal(reply.offset, 0);
  assert.deepEqual(reply.events, []);
  assert.equal(reply.epoch, sub.epoch, 'history and subscribe must report the same epoch');
  c.close();
});

t('history with limit, before and after', async () => {
  const c = await Client.connected(server);
  const ch = unique('hist');
  const sub = await c.subscribe(ch);
  c.onMessage = (msg) => msg.type === 'event'; // own events: not needed here
  await publishN(c, ch, 1, 10);
  const cases = [
    [{}, range(1, 10)],
    [{ limit: 3 }, [8, 9, 10]],
    [{ limit: 1 }, [10]],
    [{ before: 5, limit: 2 }, [3, 4]],
    [{ before: 5 }, [1, 2, 3, 4]],
    [{ after: 7 }, [8, 9, 10]],
    [{ after: 2, limit: 3 }, [3, 4, 5]],
    [{ after: 0, limit: 2 }, [1, 2]],
    [{ after: 3, before: 7 }, [4, 5, 6]],
    [{ before: 1 }, []],
    [{ after: 10 }, []],
    [{ after: 1000 }, []],
  ];
  for (const [params, offsets] of cases) {
    const reply = await history(c, ch, params);
    assert.equal(reply.offset, 10, JSON.stringify(params));
    assert.equal(reply.epoch, sub.epoch);
    checkStored(reply.events, offsets, { from: c.clientId });
  }
  c.close();
});

t('history needs no subscription and returns events exactly as delivered live', async () => {
  const ch = unique('live');
  const sub = await Client.connected(server);
  await sub.subscribe(ch);
  const pub = await Client.connected(server);
  await publishN(pub, ch, 1, 5);
  const eph = await pub.call({ type: 'publish', channel: ch, event: 'typing', data: 1, ephemeral: true });
  assert.equal(eph.type, 'ack');
  const live = [];
  for (let i = 0; i < 6; i++) live.push(await sub.next());
  assert.ok(!('offset' in live[5]), 'the ephemeral event is delivered without offset');
  const stranger = await Client.connected(server); // never subscribes
  const reply = await history(stranger, ch);
  assert.equal(reply.offset, 5);
  assert.deepEqual(reply.events, live.slice(0, 5));
  const late = await Client.connected(server);
  const sreply = await late.subscribe(ch, { history: 5 });
  assert.deepEqual(sreply.events, live.slice(0, 5));
  for (const x of [sub, pub, stranger, late]) x.close();
});

t('history keeps the newest `size` events and caps a request at max_request', async () => {
  const c = await Client.connected(server);
  const ch = unique('trim');
  await c.subscribe(ch);
  c.onMessage = (msg) => msg.type === 'event';
  await publishN(c, ch, 1, 60);
  const cases = [
    [{}, range(41, 60)],
    [{ limit: 100 }, range(41, 60)],
    [{ limit: 5 }, range(56, 60)],
    [{ after: 0 }, range(11, 30)],
    [{ after: 0, limit: 100 }, range(11, 30)],
    [{ before: 15 }, range(11, 14)],
    [{ before: 11 }, []],
    [{ after: 55 }, range(56, 60)],
  ];
  for (const [params, offsets] of cases) {
    const reply = await history(c, ch, params);
    assert.equal(reply.offset, 60);
    checkStored(reply.events, offsets);
  }
  c.close();
});

t('subscribe with history N sends the last N events, oldest first', async () => {
  const pub = await Client.connected(server);
  const ch = unique('subhist');
  await publishN(pub, ch, 1, 10);
  const cases = [
    [3, [8, 9, 10]],
    [1, [10]],
    [0, []],
    [10, range(1, 10)],
    [15, range(1, 10)],
  ];
  for (const [n, offsets] of cases) {
    const c = await Client.connected(server);
    const reply = await c.subscribe(ch, { history: n });
    assert.equal(reply.offset, 10);
    checkStored(reply.events, offsets, { from: pub.clientId });
    assert.ok(!('recovered' in reply), `recovered only with recover: ${JSON.stringify(reply)}`);
    // Live events continue right after.
    c.close();
  }
  // On a trimmed channel, capped at what is kept and at max_request.
  const ch2 = unique('subhist2');
  await publishN(pub, ch2, 1, 60);
  const c = await Client.connected(server);
  const reply = await c.subscribe(ch2, { history: 100 });
  assert.equal(reply.offset, 60);
  checkStored(reply.events, range(41, 60));
  const ack = await pub.call({ type: 'publish', channel: ch2, event: 'h.61', data: { i: 61 } });
  assert.equal(ack.offset, 61);
  checkStored([await c.next()], [61]);
  c.close();
  pub.close();
});

t('ephemeral events are never stored', async () => {
  const pub = await Client.connected(server);
  const ch = unique('eph');
  await publishN(pub, ch, 1, 1);
  const eph = await pub.call({ type: 'publish', channel: ch, event: 'typing', data: {}, ephemeral: true });
  assert.equal(eph.type, 'ack');
  assert.ok(!('offset' in eph), JSON.stringify(eph));
  await publishN(pub, ch, 2, 2);

  const c = await Client.connected(server);
  const sub = await c.subscribe(ch, { history: 10 });
  checkStored(sub.events, [1, 2]);
  checkStored((await history(c, ch)).events, [1, 2]);
  const c2 = await Client.connected(server);
  const rec = await c2.subscribe(ch, { recover: { epoch: sub.epoch, offset: 0 } });
  assert.equal(rec.recovered, true, JSON.stringify(rec));
  checkStored(rec.events, [1, 2]);
  for (const x of [pub, c, c2]) x.close();
});

t('HTTP publishes are stored too', async () => {
  const c = await Client.connected(server);
  const ch = unique('httphist');
  for (let i = 1; i <= 3; i++) {
    const res = await httpPublish(server, { channel: ch, event: `h.${i}`, data: { i } });
    assert.deepEqual(res.json, { offset: i }, res.text);
  }
  const reply = await history(c, ch);
  checkStored(reply.events, [1, 2, 3]);
  c.close();
});

t('recovery returns exactly the missed events, then live events follow', async () => {
  const pub = await Client.connected(server);
  const ch = unique('recover');
  const a = await Client.connected(server);
  const sub = await a.subscribe(ch);
  await publishN(pub, ch, 1, 5);
  const seen = [];
  for (let i = 0; i < 5; i++) seen.push(await a.next());
  checkStored(seen, range(1, 5));
  a.terminate(); // drops without a close handshake

  await publishN(pub, ch, 6, 12);
  const b = await Client.connected(server);
  const rec = await b.subscribe(ch, { recover: { epoch: sub.epoch, offset: 5 } });
  assert.equal(rec.recovered, true, JSON.stringify(rec));
  assert.equal(rec.epoch, sub.epoch);
  assert.equal(rec.offset, 12);
  checkStored(rec.events, range(6, 12), { from: pub.clientId });

  await publishN(pub, ch, 13, 13);
  const live = await b.next();
  checkStored([live], [13]);

  // Recovering at the current offset: nothing missed.
  const c = await Client.connected(server);
  const rec2 = await c.subscribe(ch, { recover: { epoch: sub.epoch, offset: 13 } });
  assert.equal(rec2.recovered, true, JSON.stringify(rec2));
  assert.deepEqual(rec2.events, []);
  for (const x of [pub, b, c]) x.close();
});

t('recovery fails for an unknown epoch and for offsets no longer kept', async () => {
  const pub = await Client.connected(server);
  const ch = unique('norecover');
  await publishN(pub, ch, 1, 60); // offsets 1..10 are trimmed (size 50)
  const probe = await Client.connected(server);
  const { epoch } = await probe.subscribe(ch);
  probe.close();

  // Recovery returns at most history.max_request (20) events: 20 missed
  // events are recovered, 21 are too many (never a truncated list).
  const c = await Client.connected(server);
  const r3 = await c.subscribe(ch, { recover: { epoch, offset: 40 } });
  assert.equal(r3.recovered, true, JSON.stringify(r3));
  checkStored(r3.events, range(41, 60));
  const e = await Client.connected(server);
  const r5 = await e.subscribe(ch, { recover: { epoch, offset: 39 } });
  assert.equal(r5.recovered, false, `21 missed events > max_request: ${JSON.stringify(r5)}`);
  assert.deepEqual(r5.events, []);
  assert.equal(r5.offset, 60);
  // An offset beyond the channel's last one cannot be recovered either.
  const f = await Client.connected(server);
  const r6 = await f.subscribe(ch, { recover: { epoch, offset: 61 } });
  assert.equal(r6.recovered, false, JSON.stringify(r6));
  assert.deepEqual(r6.events, []);

  const a = await Client.connected(server);
  const r1 = await a.subscribe(ch, { recover: { epoch: `not-${epoch}`, offset: 55 } });
  assert.equal(r1.recovered, false, JSON.stringify(r1));
  assert.deepEqual(r1.events, []);
  assert.equal(r1.epoch, epoch);
  assert.equal(r1.offset, 60);
  // Still subscribed: live events flow.
  await publishN(pub, ch, 61, 61);
  checkStored([await a.next()], [61]);

  // Offsets no longer kept (history keeps 12..61 now).
  const b = await Client.connected(server);
  const r2 = await b.subscribe(ch, { recover: { epoch, offset: 5 } });
  assert.equal(r2.recovered, false, `offsets 6..11 are gone, recovery must fail: ${JSON.stringify(r2)}`);
  assert.deepEqual(r2.events, []);
  // And recover wins over history: history is ignored with recover.
  const d = await Client.connected(server);
  const r4 = await d.subscribe(ch, { recover: { epoch, offset: 59 }, history: 10 });
  assert.equal(r4.recovered, true, JSON.stringify(r4));
  checkStored(r4.events, [60, 61]);

  for (const x of [pub, a, b, c, d, e, f]) x.close();
});

// Publishes 1..total on `channel` from `pub`, at most `window` unacknowledged.
function stream(pub, channel, total, window = 50) {
  let acked = 0;
  let wake = null;
  pub.onMessage = (msg) => {
    if (msg.type !== 'ack') return false;
    acked++;
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
    return true;
  };
  const done = (async () => {
    for (let i = 1; i <= total; i++) {
      while (i - acked > window) await new Promise((r) => (wake = r));
      pub.send({ type: 'publish', id: i, channel, event: `h.${i}`, data: { i } });
    }
    while (acked < total) await new Promise((r) => (wake = r));
  })();
  return { done, acked: () => acked };
}

function collector(c) {
  const events = [];
  c.onMessage = (msg) => {
    if (msg.type !== 'event') return false;
    events.push(msg);
    return true;
  };
  return events;
}

async function waitFor(cond, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

serverTest(
  () => server,
  'recovery and history-subscribe racing a publish stream: no gap, no duplicate',
  { timeout: 60_000 },
  async () => {
    // A server of its own with the default history size (1000), so a
    // recovery gap of a few hundred events is still kept.
    const big = await new HeraldServer({ name: 'history-race', config: tomlConfig({ engine: { type: 'memory' } }) }).start();
    try {
      const total = 3000;
      const ch = unique('race');
      const pub = await Client.connected(big);
      const first = await Client.connected(big);
      const sub = await first.subscribe(ch);
      const firstEvents = collector(first);
      const s = stream(pub, ch, total);

      await waitFor(() => firstEvents.length >= 300, 'the first 300 events');
      first.terminate();
      const last = firstEvents[firstEvents.length - 1].offset;
      checkStored(firstEvents, range(1, last));

      // Reconnect with recover while the stream goes on.
      const again = await Client.connected(big);
      const againEvents = collector(again);
      const rec = await again.subscribe(ch, { recover: { epoch: sub.epoch, offset: last } });
      assert.equal(rec.recovered, true, `recovery ${last} -> ${rec.offset} failed`);
      checkStored(rec.events, range(last + 1, rec.offset));

      // A newcomer asking for history while the stream goes on.
      const late = await Client.connected(big);
      const lateEvents = collector(late);
      const hist = await late.subscribe(ch, { history: 20 });
      checkStored(hist.events, range(Math.max(1, hist.offset - 19), hist.offset));

      await s.done;
      await waitFor(() => againEvents.length >= total - rec.offset, 'live events after recovery');
      await waitFor(() => lateEvents.length >= total - hist.offset, 'live events after history');
      checkStored([...rec.events, ...againEvents], range(last + 1, total));
      checkStored([...hist.events, ...lateEvents], range(Math.max(1, hist.offset - 19), total));
      for (const x of [pub, again, late]) x.close();
      await big.stopChecked();
    } finally {
      big.kill();
    }
  },
);
