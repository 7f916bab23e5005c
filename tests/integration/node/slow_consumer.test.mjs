// Slow-consumer protection of a real herald server (limits.max_outbound_bytes
// = 65536): a raw-socket subscriber that stops reading while a publisher
// floods its channel with ~1 KB events must be cut off (close 4008, or its TCP
// connection closed/reset by the server), while a normal subscriber of the
// same channel gets every event exactly once and in order, and the server
// stays healthy.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, HeraldServer, RawWebSocket, serverTest, tomlConfig, unique } from './lib/harness.mjs';

const MAX_OUTBOUND = 65536;
const EVENT_BYTES = 1024;
// Kernel socket buffers on loopback can absorb several MB (send buffer
// autotuning up to net.ipv4.tcp_wmem max, plus the receiver's buffer)
// before the server's own queue grows; flood well past that.
const MAX_EVENTS = 24_000;
const PROBE_EVERY = 1000;
const WINDOW = 32; // events in flight towards the normal subscriber

let server;
before(async () => {
  server = await new HeraldServer({
    name: 'slow-consumer',
    config: tomlConfig({ limits: { max_outbound_bytes: MAX_OUTBOUND } }),
  }).start();
});
after(async () => {
  await server?.stopChecked();
});

serverTest(
  () => server,
  'a subscriber that stops reading is cut off; others get every event in order',
  { timeout: 100_000 },
  async () => {
    const ch = unique('slow');
    const slow = await RawWebSocket.connect(server.port);
    slow.sendText(JSON.stringify({ type: 'subscribe', id: 1, channel: ch }));
    const reply = await slow.nextJson();
    assert.equal(reply.type, 'subscribed', JSON.stringify(reply));
    slow.pause(); // never read again (until the end)

    const normal = await Client.connected(server);
    await normal.subscribe(ch);
    let received = 0;
    let orderError = null;
    normal.onMessage = (msg) => {
      if (msg.type !== 'event') return false;
      received++;
      if (msg.offset !== received && !orderError) orderError = `expected offset ${received}, got ${msg.offset}`;
      if (msg.data.n !== received && !orderError) orderError = `offset ${received} carries data n=${msg.data.n}`;
      return true;
    };

    const pub = await Client.connected(server);
    let acked = 0;
    let ackError = null;
    pub.onMessage = (msg) => {
      if (msg.type !== 'ack') return false;
      acked++;
      if (msg.offset !== acked && !ackError) ackError = `ack ${acked} has offset ${msg.offset}`;
      return true;
    };

    const pad = 'p'.repeat(EVENT_BYTES - 200);
    let published = 0;
    let slowGone = false;
    const started = Date.now();
    const deadline = started + 80_000;
    const wait = () => new Promise((r) => setImmediate(r));
    while (published < MAX_EVENTS && !slowGone) {
      // Pace on the normal subscriber, so that it is never the slow one.
      while (published - received >= WINDOW) {
        assert.ok(!normal.closeInfo, `normal subscriber closed: ${JSON.stringify(normal.closeInfo)}`);
        assert.ok(Date.now() < deadline, `flood stalled at ${published} published, ${received} received`);
        await wait();
      }
      published++;
      pub.send({ type: 'publish', id: published, channel: ch, event: 'flood', data: { n: published, pad } });
      if (published % PROBE_EVERY === 0) {
        // Writing to a connection the server has closed gets it reset.
        const err = await slow.writeFrame(0x9, 'probe');
        if (err || slow.error || slow.ended) slowGone = true;
      }
    }
    while (received < published || acked < published) {
      assert.ok(!normal.closeInfo, `normal subscriber closed: ${JSON.stringify(normal.closeInfo)}`);
      assert.ok(Date.now() < deadline, `normal subscriber got ${received}/${published}, acks ${acked}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const floodMs = Date.now() - started;
    assert.equal(orderError, null, orderError);
    assert.equal(ackError, null, ackError);
    assert.equal(received, published);

    // Now read what the slow consumer was sent: some events in order, then
    // the end of the connection (close 4008 and/or EOF/reset), never all.
    slow.resume();
    let events = 0;
    let closeCode = null;
    const readDeadline = Date.now() + 20_000;
    for (;;) {
      const f = await slow.nextFrame(Math.max(1, readDeadline - Date.now())).catch((e) => {
        throw new Error(`slow consumer still connected after the flood (${events} events read): ${e.message}`);
      });
      if (f === null) break; // EOF or reset
      if (f.opcode === 0x1) {
        const msg = JSON.parse(f.payload.toString('utf8'));
        if (msg.type === 'event') {
          events++;
          assert.equal(msg.offset, events, 'the slow consumer must not skip events before it is cut off');
        }
      } else if (f.opcode === 0x8) {
        closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
        await slow.writeFrame(0x8, f.payload.subarray(0, 2));
        const end = await slow.nextFrame(10_000).catch(() => 'open');
        assert.notEqual(end, 'open', 'server did not close the TCP connection after its close frame');
        break;
      }
    }
    slow.destroy();
    console.log(
      `# slow consumer: cut off after ${events} of ${published} events (close code ${closeCode}), flood ${floodMs} ms`,
    );
    if (closeCode !== null) assert.equal(closeCode, 4008, 'slow consumer close code');
    assert.ok(events < published, `the slow consumer received all ${published} events: it was never cut off`);

    // The others were not affected and the server is fine.
    assert.equal(normal.closeInfo, null);
    assert.equal(pub.closeInfo, null);
    pub.onMessage = null;
    const ack = await pub.call({ type: 'publish', channel: ch, event: 'after', data: { n: published + 1 } });
    assert.equal(ack.offset, published + 1);
    assert.ok(await server.healthy(), 'server unhealthy after the slow consumer');
    const fresh = await Client.connected(server);
    const sub = await fresh.subscribe(ch);
    assert.equal(sub.offset, published + 1);
    for (const c of [fresh, normal, pub]) c.close();
  },
);

serverTest(
  () => server,
  'many slow consumers at once do not hurt a normal subscriber',
  { timeout: 100_000 },
  async () => {
    const ch = unique('slowmany');
    const slows = [];
    for (let i = 0; i < 6; i++) {
      const s = await RawWebSocket.connect(server.port);
      s.sendText(JSON.stringify({ type: 'subscribe', id: 1, channel: ch }));
      assert.equal((await s.nextJson()).type, 'subscribed');
      s.pause();
      slows.push(s);
    }
    const normal = await Client.connected(server);
    await normal.subscribe(ch);
    let received = 0;
    let bad = null;
    normal.onMessage = (msg) => {
      if (msg.type !== 'event') return false;
      received++;
      if (msg.offset !== received && !bad) bad = `expected offset ${received}, got ${msg.offset}`;
      return true;
    };
    // Flood over HTTP this time, in parallel batches.
    const pad = 'q'.repeat(EVENT_BYTES - 100);
    let published = 0;
    const deadline = Date.now() + 80_000;
    let allGone = false;
    while (published < MAX_EVENTS && !allGone) {
      const batch = [];
      for (let k = 0; k < 16; k++) {
        batch.push(
          fetch(server.url('/api/publish'), {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ channel: ch, event: 'flood', data: pad }),
          }).then(async (r) => {
            assert.equal(r.status, 200, await r.text());
            await r.arrayBuffer().catch(() => {});
          }),
        );
      }
      await Promise.all(batch);
      published += batch.length;
      while (published - received > 64) {
        assert.ok(Date.now() < deadline, `normal subscriber stalled at ${received}/${published}`);
        assert.ok(!normal.closeInfo, `normal subscriber closed: ${JSON.stringify(normal.closeInfo)}`);
        await new Promise((r) => setImmediate(r));
      }
      if (published % 1024 === 0) {
        const errs = await Promise.all(slows.map((s) => s.writeFrame(0x9, 'probe')));
        allGone = slows.every((s, i) => errs[i] || s.error || s.ended);
      }
    }
    while (received < published) {
      assert.ok(Date.now() < deadline, `normal subscriber got ${received}/${published}`);
      assert.ok(!normal.closeInfo, `normal subscriber closed: ${JSON.stringify(normal.closeInfo)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(bad, null, bad);
    for (const [i, s] of slows.entries()) {
      s.resume();
      let events = 0;
      for (;;) {
        const f = await s.nextFrame(20_000).catch(() => 'timeout');
        assert.notEqual(f, 'timeout', `slow consumer ${i} still connected after ${events} events`);
        if (f === null) break;
        if (f.opcode === 0x8) {
          assert.equal(f.payload.readUInt16BE(0), 4008);
          break;
        }
        if (f.opcode === 0x1) events++;
      }
      assert.ok(events < published, `slow consumer ${i} was never cut off`);
      s.destroy();
    }
    assert.ok(await server.healthy());
    normal.close();
  },
);
