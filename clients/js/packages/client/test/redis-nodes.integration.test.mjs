// Several Herald nodes on one Redis (engine.type = "redis"), as a user runs
// them: three real `herald` processes on a real redis-server started here,
// behind a TCP load balancer of this test (round robin over the nodes still
// up, like a proxy whose health check removed a dead one). SDK subscribers
// and a publisher connect through it; one node is killed with SIGKILL in the
// middle of the publishing. Its clients reconnect (through the balancer, to
// another node) and recover: every subscriber must end with exactly the
// channel's history, in order, no gap, no duplicate, and every publish
// promise with the offset that history shows. Skipped, saying why, when
// redis-server is not installed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { Herald } from '../dist/index.js';
import { freePort, Server } from './support/server.mjs';
import { sleep } from './support/fake-socket.mjs';

const unique = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;
const haveRedis = spawnSync('redis-server', ['--version']).status === 0;

// Forwards each accepted connection to the next node that is up.
class Balancer {
  constructor(ports) {
    this.backends = ports.map((port) => ({ port, up: true, sockets: new Set() }));
    this.next = 0;
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this.server.address().port;
  }

  accept(client) {
    const live = this.backends.filter((b) => b.up);
    if (live.length === 0) return client.destroy();
    const b = live[this.next++ % live.length];
    const upstream = net.connect(b.port, '127.0.0.1');
    b.sockets.add(client);
    const end = () => {
      b.sockets.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  // The node is gone: no new connection goes there (its open ones broke with it).
  down(port) {
    this.backends.find((b) => b.port === port).up = false;
  }

  close() {
    this.server.close();
    for (const b of this.backends) for (const s of b.sockets) s.destroy();
  }
}

let redis = null;
let redisDir = null;
let nodes = [];
let balancer = null;
let lbPort = 0;

before(async () => {
  if (!haveRedis) return;
  redisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-sdk-redis-'));
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir,
    '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const config = `[engine]\ntype = "redis"\nredis_url = "redis://127.0.0.1:${port}"\n` +
    `redis_reconnect_max_ms = 200\n[history]\nsize = 10000\n`;
  for (let i = 0; i < 3; i++) {
    for (let attempt = 0; ; attempt++) {
      try {
        nodes.push(await new Server({ config }).start());
        break;
      } catch (e) {
        if (attempt > 50) throw e; // redis-server still starting: herald refuses to start without it
        await sleep(100);
      }
    }
  }
  balancer = new Balancer(nodes.map((n) => n.port));
  lbPort = await balancer.listen();
});

after(async () => {
  balancer?.close();
  for (const n of nodes) await n.stop();
  redis?.kill('SIGKILL');
  if (redisDir) fs.rmSync(redisDir, { recursive: true, force: true });
});

async function allHistory(node, ch) {
  const events = [];
  let afterOffset = 0;
  for (;;) {
    const res = await fetch(node.url(`/api/channels/${encodeURIComponent(ch)}/history?after=${afterOffset}&limit=1000`));
    const page = await res.json();
    assert.equal(res.status, 200, JSON.stringify(page));
    if (page.events.length === 0) return events;
    events.push(...page.events);
    afterOffset = page.events.at(-1).offset;
  }
}

test('a node killed mid-run: its SDK clients reconnect to another node and recover exactly', async (t) => {
  if (!haveRedis) return t.skip('redis-server is not installed (scripts/install-deps.sh installs it)');
  const ch = unique('room:nodes');
  const url = `ws://127.0.0.1:${lbPort}/ws`;
  const options = {
    url,
    WebSocket,
    reconnect: { initialDelayMs: 10, maxDelayMs: 100, factor: 2, jitter: 0.5 },
    publishTimeoutMs: 60_000,
  };
  const subscribers = [];
  for (let i = 0; i < 6; i++) {
    const h = new Herald(options);
    const got = [];
    const s = { h, got, drops: 0 };
    h.on('disconnected', () => s.drops++);
    h.connect();
    const sub = h.subscribe(ch, { onEvent: (e) => got.push({ offset: e.offset, i: e.data.i }) });
    await sub.ready;
    subscribers.push(s);
  }
  const pub = new Herald(options);
  let pubDrops = 0;
  pub.on('disconnected', () => pubDrops++);
  pub.connect();
  const N = 300;
  const results = new Array(N);
  const promises = [];
  const victim = nodes[0];
  for (let i = 0; i < N; i++) {
    promises.push(pub.publish(ch, 'n', { i }).then((r) => (results[i] = r)));
    if (i === N / 3) {
      balancer.down(victim.port);
      await victim.kill();
    }
    if (i % 10 === 9) await sleep(5);
  }
  const settled = await Promise.allSettled(promises);
  const failed = settled.filter((s) => s.status === 'rejected').map((s) => `${s.reason.code}: ${s.reason.message}`);
  assert.deepEqual(failed, [], 'every publish resolves');

  const history = await allHistory(nodes[1], ch);
  assert.equal(history.length, N, 'each message stored once');
  assert.deepEqual(history.map((e) => e.offset), Array.from({ length: N }, (_, k) => k + 1));
  for (let i = 0; i < N; i++) {
    assert.equal(results[i].offset, history.find((e) => e.data.i === i).offset, `message ${i}`);
  }
  const want = history.map((e) => ({ offset: e.offset, i: e.data.i }));
  const deadline = Date.now() + 20_000;
  while (subscribers.some((s) => s.got.length < N) && Date.now() < deadline) await sleep(20);
  for (const [k, s] of subscribers.entries()) {
    assert.deepEqual(s.got, want, `subscriber ${k}: exactly the history, in order`);
  }
  // The balancer gave the victim subscribers 0 and 3 and the publisher (7th
  // connection): they lost their node and went on through another one.
  assert.deepEqual(subscribers.map((s) => s.drops > 0), [true, false, false, true, false, false]);
  assert.ok(pubDrops > 0, 'the publisher lost its node too');
  for (const s of subscribers) s.h.close();
  pub.close();
  nodes = nodes.filter((n) => n !== victim);
});
