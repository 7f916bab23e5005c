// Fan-out at scale and ordering across workers (Node `ws` clients against a
// real herald with 2 workers): 200 subscribers over 20 channels (2 channels
// each, connections spread over both SO_REUSEPORT workers), 4 WebSocket and 2
// HTTP publishers publishing concurrently to all channels. Every subscriber
// must get every event of its channels exactly once, in offset order, with
// contiguous offsets matching the publishers' acks, and the data intact.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, HeraldServer, RawWebSocket, httpPublish, serverTest, unique } from './lib/harness.mjs';

const CHANNELS = 20;
const SUBSCRIBERS = 200;
const WS_PUBLISHERS = 4;
const ROUNDS = 20; // each WS publisher publishes ROUNDS events to every channel
const HTTP_PUBLISHERS = 2;
const HTTP_EVENTS = 100; // per HTTP publisher, round-robin over the channels
const WINDOW = 64; // unacknowledged publishes per WebSocket publisher
const HTTP_CONCURRENCY = 4;

let server;
before(async () => {
  server = await new HeraldServer({ name: 'fanout' }).start();
});
after(async () => {
  await server?.stopChecked();
});

// Raw JSON with unusual spacing and non-ASCII text: must reach subscribers
// byte for byte.
function wsData(p, c, r) {
  return `{"p": ${p}, "c":${c} , "r":${r}, "text":"caf\u00e9 \ud83d\ude00 \\u00e9", "f": 1.50, "pad":"${'x'.repeat(
    (p * 7 + c * 3 + r) % 50,
  )}"}`;
}

async function wsPublisher(pub, p, channels, acks) {
  const pending = new Map(); // id -> {c, r}
  let inFlight = 0;
  let release = null;
  pub.onMessage = (msg) => {
    if (msg.type !== 'ack') return false;
    const info = pending.get(msg.id);
    assert.ok(info, `ack for an unknown id: ${JSON.stringify(msg)}`);
    pending.delete(msg.id);
    acks.push({ key: `ws:${p}:${info.c}:${info.r}`, c: info.c, offset: msg.offset, p, r: info.r });
    inFlight--;
    if (release) {
      const r = release;
      release = null;
      r();
    }
    return true;
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (let c = 0; c < CHANNELS; c++) {
      while (inFlight >= WINDOW) {
        await new Promise((resolve) => {
          release = resolve;
        });
      }
      const id = `${p}-${c}-${r}`;
      pending.set(id, { c, r });
      inFlight++;
      pub.send(`{"type":"publish","id":"${id}","channel":"${channels[c]}","event":"fan.ws","data":${wsData(p, c, r)}}`);
    }
  }
  const deadline = Date.now() + 60_000;
  while (inFlight > 0) {
    if (pub.closeInfo) throw new Error(`publisher ${p} closed: ${JSON.stringify(pub.closeInfo)}`);
    assert.ok(Date.now() < deadline, `publisher ${p}: ${inFlight} publishes never acknowledged`);
    await new Promise((resolve) => {
      release = resolve;
      setTimeout(resolve, 200);
    });
  }
}

async function httpPublisher(h, channels, acks) {
  let next = 0;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= HTTP_EVENTS) return;
      const c = (i + h * 3) % CHANNELS;
      const res = await httpPublish(server, {
        channel: channels[c],
        event: 'fan.http',
        data: { h, i, nested: { list: [1, 2, 3], s: 'sn\u00f8w \u2603' } },
      });
      assert.equal(res.status, 200, `HTTP publish failed: ${res.status} ${res.text}`);
      assert.equal(typeof res.json.offset, 'number', res.text);
      acks.push({ key: `http:${h}:${i}`, c, offset: res.json.offset, h, i });
    }
  }
  await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, worker));
}

function expectedData(ack) {
  if (ack.key.startsWith('ws:')) return { raw: wsData(ack.p, ack.c, ack.r), data: JSON.parse(wsData(ack.p, ack.c, ack.r)) };
  return { raw: null, data: { h: ack.h, i: ack.i, nested: { list: [1, 2, 3], s: 'sn\u00f8w \u2603' } } };
}

serverTest(
  () => server,
  'every subscriber gets every event of its channels exactly once, in order',
  { timeout: 110_000 },
  async () => {
    const run = unique('fan');
    // A spread of valid channel-name characters.
    const channels = Array.from({ length: CHANNELS }, (_, c) => `${run}:room.${c}/x=${c}@h_${c}`);

    // Subscribers: i subscribes to channels a and b (always different).
    const subs = [];
    const opens = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const a = i % CHANNELS;
      const b = (a + 7 + Math.floor(i / CHANNELS)) % CHANNELS;
      opens.push(
        (async () => {
          const c = await Client.connected(server);
          const got = new Map([
            [a, []],
            [b, []],
          ]);
          const byName = new Map([
            [channels[a], a],
            [channels[b], b],
          ]);
          c.onMessage = (msg, raw) => {
            if (msg.type !== 'event') return false;
            const ch = byName.get(msg.channel);
            assert.ok(ch !== undefined, `event for a channel not subscribed: ${raw}`);
            got.get(ch).push({ msg, raw });
            return true;
          };
          for (const ch of [a, b]) {
            const reply = await c.subscribe(channels[ch]);
            assert.equal(reply.offset, 0, `fresh channel should have offset 0: ${JSON.stringify(reply)}`);
            assert.deepEqual(reply.events, []);
          }
          subs[i] = { c, got, channels: [a, b] };
        })(),
      );
    }
    await Promise.all(opens);

    // Publishers, all at once.
    const acks = [];
    const pubs = [];
    for (let p = 0; p < WS_PUBLISHERS; p++) pubs.push(await Client.connected(server));
    const started = Date.now();
    await Promise.all([
      ...pubs.map((pub, p) => wsPublisher(pub, p, channels, acks)),
      ...Array.from({ length: HTTP_PUBLISHERS }, (_, h) => httpPublisher(h, channels, acks)),
    ]);

    // Acks: per channel, offsets are exactly 1..N with no gap or repeat.
    const perChannel = Array.from({ length: CHANNELS }, () => []);
    for (const a of acks) perChannel[a.c].push(a);
    const byOffset = [];
    for (let c = 0; c < CHANNELS; c++) {
      const offsets = perChannel[c].map((a) => a.offset).sort((x, y) => x - y);
      assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, k) => k + 1), `channel ${c}: acked offsets`);
      byOffset[c] = new Map(perChannel[c].map((a) => [a.offset, a]));
    }
    // A single publisher's events on one channel keep its send order.
    for (let p = 0; p < WS_PUBLISHERS; p++) {
      for (let c = 0; c < CHANNELS; c++) {
        const mine = perChannel[c].filter((a) => a.p === p && a.key.startsWith('ws:')).sort((x, y) => x.r - y.r);
        for (let k = 1; k < mine.length; k++) {
          assert.ok(mine[k].offset > mine[k - 1].offset, `publisher ${p} channel ${c}: offsets out of send order`);
        }
      }
    }

    // A last event per channel: once it arrives everywhere, nothing else may
    // be outstanding (per-channel delivery is ordered).
    const sentinel = [];
    for (let c = 0; c < CHANNELS; c++) {
      const res = await httpPublish(server, { channel: channels[c], event: 'fan.end', data: null });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.offset, perChannel[c].length + 1);
      sentinel[c] = res.json.offset;
    }
    const deadline = Date.now() + 60_000;
    for (const s of subs) {
      for (;;) {
        const done = s.channels.every((ch) => {
          const list = s.got.get(ch);
          return list.length > 0 && list[list.length - 1].msg.offset >= sentinel[ch];
        });
        if (done) break;
        if (s.c.closeInfo) throw new Error(`subscriber closed: ${JSON.stringify(s.c.closeInfo)}`);
        if (Date.now() > deadline) {
          const counts = s.channels.map((ch) => `${ch}: ${s.got.get(ch).length}/${sentinel[ch]}`);
          throw new Error(`subscriber did not receive everything within 60 s (${counts.join(', ')})`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const elapsed = Date.now() - started;

    // Per subscriber and channel: offsets 1..N in order, data intact.
    const publisherIds = new Set(pubs.map((p) => p.clientId));
    let deliveries = 0;
    for (const [i, s] of subs.entries()) {
      for (const ch of s.channels) {
        const list = s.got.get(ch);
        const offsets = list.map((e) => e.msg.offset);
        assert.deepEqual(
          offsets,
          Array.from({ length: sentinel[ch] }, (_, k) => k + 1),
          `subscriber ${i} channel ${ch}: offsets not exactly 1..${sentinel[ch]} in order`,
        );
        for (const { msg, raw } of list) {
          deliveries++;
          assert.equal(msg.channel, channels[ch]);
          assert.equal(typeof msg.ts, 'number');
          if (msg.offset === sentinel[ch]) {
            assert.equal(msg.event, 'fan.end');
            continue;
          }
          const ack = byOffset[ch].get(msg.offset);
          const exp = expectedData(ack);
          assert.deepEqual(msg.data, exp.data, `subscriber ${i} channel ${ch} offset ${msg.offset}: data`);
          if (exp.raw !== null) {
            assert.equal(msg.event, 'fan.ws');
            assert.ok(raw.includes(exp.raw), `data not spliced byte-for-byte at offset ${msg.offset}: ${raw}`);
            assert.equal(msg.from?.client, pubs[ack.p].clientId);
            assert.ok(publisherIds.has(msg.from.client));
          } else {
            assert.equal(msg.event, 'fan.http');
          }
        }
      }
    }
    const total = WS_PUBLISHERS * ROUNDS * CHANNELS + HTTP_PUBLISHERS * HTTP_EVENTS;
    assert.equal(acks.length, total);
    console.log(`# fan-out: ${total} events, ${deliveries} deliveries in ${elapsed} ms`);

    for (const s of subs) s.c.close();
    for (const p of pubs) p.close();
    assert.ok(await server.healthy(), 'server unhealthy after the fan-out');
  },
);

serverTest(
  () => server,
  'subscribing during a publish stream gives contiguous offsets after the reply',
  { timeout: 60_000 },
  async () => {
    // Subscribers join while events stream in; each must see exactly the
    // offsets after the one its `subscribed` reply reported, no gap.
    const ch = unique('join');
    const pub = await Client.connected(server);
    const total = 2000;
    let acked = 0;
    pub.onMessage = (msg) => {
      if (msg.type === 'ack') {
        acked++;
        return true;
      }
      return false;
    };
    const joiners = [];
    const publishing = (async () => {
      for (let i = 1; i <= total; i++) {
        pub.send({ type: 'publish', id: i, channel: ch, event: 'e', data: i });
        if (i % 50 === 0) {
          while (acked < i - 100) await new Promise((r) => setTimeout(r, 1));
        }
      }
    })();
    for (let k = 0; k < 20; k++) {
      const c = await Client.connected(server);
      const events = [];
      let replied = false;
      let early = null;
      c.onMessage = (msg) => {
        if (msg.type === 'subscribed') replied = true;
        if (msg.type !== 'event') return false;
        if (!replied && !early) early = msg.offset;
        events.push(msg.offset);
        return true;
      };
      const reply = await c.subscribe(ch);
      assert.equal(early, null, `event ${early} arrived before the subscribed reply`);
      joiners.push({ c, events, from: reply.offset });
      await new Promise((r) => setTimeout(r, 5));
    }
    await publishing;
    const deadline = Date.now() + 30_000;
    while (acked < total) {
      assert.ok(Date.now() < deadline, `only ${acked}/${total} acks`);
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const [k, j] of joiners.entries()) {
      while (j.events.length < total - j.from) {
        assert.ok(Date.now() < deadline, `joiner ${k}: ${j.events.length}/${total - j.from} events`);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.deepEqual(
        j.events,
        Array.from({ length: total - j.from }, (_, n) => j.from + 1 + n),
        `joiner ${k} (subscribed at offset ${j.from})`,
      );
      j.c.close();
    }
    pub.close();
  },
);

serverTest(
  () => server,
  'a reader that pauses gets a byte-exact stream through the server queue',
  { timeout: 90_000 },
  async () => {
    // While the reader pauses, the publisher pushes ~3 MB ahead: the socket
    // fills, the rest waits in the server's queue, and goes out in partial
    // writes when the reader resumes; every frame must arrive whole and in
    // order. The window (~2.9 MB) stays under the default 4 MiB outbound
    // limit even when the kernel buffers absorb nothing, so a 4008 here
    // would be a server bug.
    const ch = unique('pause');
    const reader = await RawWebSocket.connect(server.port);
    reader.sendText(JSON.stringify({ type: 'subscribe', id: 1, channel: ch }));
    assert.equal((await reader.nextJson()).type, 'subscribed');
    const pub = await Client.connected(server);
    let acked = 0;
    pub.onMessage = (msg) => {
      if (msg.type !== 'ack') return false;
      acked++;
      return true;
    };
    const total = 12_000;
    const window = 2_500;
    const pad = (n) => 'z'.repeat(900 + (n % 97)); // varying sizes: frame boundaries move
    let got = 0;
    let paused = false;
    let bad = null;
    const deadline = Date.now() + 80_000;
    const pump = async () => {
      while (got < total) {
        const f = await reader.nextFrame(Math.max(1, deadline - Date.now()));
        assert.ok(f, `reader connection ended after ${got} events (${reader.error})`);
        if (f.opcode === 0x8) {
          const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
          assert.fail(`server closed the reader with ${code} after ${got} events (${acked} acked)`);
        }
        if (f.opcode !== 0x1) continue;
        const msg = JSON.parse(f.payload.toString('utf8'));
        if (msg.type === 'ping') continue;
        got++;
        if (!bad && (msg.offset !== got || msg.data.n !== got || msg.data.pad !== pad(got))) {
          bad = `event ${got}: ${f.payload.toString('utf8').slice(0, 200)}`;
        }
        if (got % 1000 === 0 && !paused) {
          paused = true;
          reader.pause();
          // Resume once the publisher has pushed the window ahead.
          while (acked < Math.min(total, got + window - 100) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 5));
          }
          reader.resume();
          paused = false;
        }
      }
    };
    const reading = pump();
    for (let n = 1; n <= total; n++) {
      while (n - got > window) {
        assert.ok(Date.now() < deadline, `stalled at ${n}, reader at ${got}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      pub.send({ type: 'publish', id: n, channel: ch, event: 'bulk', data: { n, pad: pad(n) } });
      if (n % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    await reading;
    assert.equal(bad, null, bad);
    assert.equal(got, total);
    reader.destroy();
    pub.close();
  },
);

serverTest(
  () => server,
  'subscribers vanishing mid-stream do not disturb the others',
  { timeout: 60_000 },
  async () => {
    const ch = unique('vanish');
    const stayers = [];
    const leavers = [];
    for (let i = 0; i < 40; i++) {
      const c = await Client.connected(server);
      await c.subscribe(ch);
      (i % 2 ? leavers : stayers).push(c);
    }
    for (const c of stayers) {
      c.got = [];
      c.onMessage = (msg) => {
        if (msg.type !== 'event') return false;
        c.got.push(msg.offset);
        return true;
      };
    }
    for (const c of leavers) c.onMessage = (msg) => msg.type === 'event';
    const pub = await Client.connected(server);
    let acked = 0;
    pub.onMessage = (msg) => {
      if (msg.type !== 'ack') return false;
      acked++;
      return true;
    };
    const total = 3000;
    for (let n = 1; n <= total; n++) {
      while (n - acked > 100) await new Promise((r) => setTimeout(r, 1));
      pub.send({ type: 'publish', id: n, channel: ch, event: 'e', data: n });
      if (n % 150 === 0 && leavers.length) {
        const c = leavers.pop();
        if (leavers.length % 2) c.terminate(); // TCP drop, no close frame
        else c.close(); // close handshake while events are in flight
      }
    }
    const deadline = Date.now() + 30_000;
    for (const c of stayers) {
      while (c.got.length < total) {
        assert.ok(Date.now() < deadline, `stayer got ${c.got.length}/${total}`);
        assert.equal(c.closeInfo, null);
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.deepEqual(c.got, Array.from({ length: total }, (_, k) => k + 1));
      c.close();
    }
    pub.close();
    assert.ok(await server.healthy());
  },
);
