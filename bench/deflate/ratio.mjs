// permessage-deflate against uncompressed fan-out in one run, one server
// (issue 16 item 2): Herald with server.compression = true; half the
// subscribers offer permessage-deflate (Node `ws`, perMessageDeflate on), the
// other half do not, so both paths share the process and the machine's load.
// Rounds alternate which kind goes first; each reports, per kind,
//   fan-out: S subscribers of one channel, P events of ~B bytes of chat-like
//     JSON published by one uncompressed publisher; deliveries per second
//     until the last subscriber has the last event;
//   server CPU per delivery: utime + stime of the herald process from /proc
//     (the client's own inflate cost is left out);
//   bytes on the wire per delivery: the delta of herald_bytes_written_total
//     from /metrics over the fan-out (frame headers and payloads, no TCP).
// Events differ from each other (a counter, a user, rotating words), like a
// chat, so each is compressed on its own: once per event, not per subscriber.
//
// Usage: node bench/deflate/ratio.mjs [--bin build/release/herald] [--rounds 3]
//        [--subs 200] [--events 500] [--bytes 1024] [--workers 2] [--level 6]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const WebSocket = require(path.join(repo, 'tests/integration/node/node_modules/ws'));

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const BIN = args.bin ?? path.join(repo, 'build/release/herald');
const ROUNDS = Number(args.rounds ?? 3);
const SUBS = Number(args.subs ?? 200);
const EVENTS = Number(args.events ?? 500);
const BYTES = Number(args.bytes ?? 1024);
const WORKERS = Number(args.workers ?? 2);
const LEVEL = Number(args.level ?? 6);

const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-deflate-bench-'));
const port = await freePort();
fs.writeFileSync(path.join(dir, 'herald.toml'), `[server]
static_dir = ""
compression = true
compression_min_bytes = 256
compression_level = ${LEVEL}
[engine]
type = "memory"
[limits]
max_connections = 100000
max_outbound_bytes = 67108864
`);
const server = spawn(BIN, ['serve', '--config', path.join(dir, 'herald.toml'), '--listen',
  `127.0.0.1:${port}`, '--workers', String(WORKERS), '--log-level', 'warn'],
{ stdio: ['ignore', 'inherit', 'inherit'] });
process.on('exit', () => server.kill('SIGKILL'));

function open(deflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: deflate });
    ws.once('error', reject);
    ws.once('open', () => {
      const negotiated = (ws.extensions || '').includes('permessage-deflate');
      if (negotiated !== deflate) reject(new Error(`extensions "${ws.extensions}"`));
      ws.once('message', (d) => {
        const m = JSON.parse(d);
        if (m.type !== 'connected') reject(new Error(d.toString()));
        else resolve(ws);
      });
      ws.send('{"type":"connect","id":1}');
    });
  });
}

for (let i = 0; ; i++) {
  try {
    (await open(false)).terminate();
    break;
  } catch (e) {
    if (i > 200) throw e;
    await sleep(50);
  }
}

const CLK_TCK = 100;  // sysconf(_SC_CLK_TCK) on Linux
function serverCpuSeconds() {
  const stat = fs.readFileSync(`/proc/${server.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;  // utime, stime
}

async function bytesWritten() {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('herald_bytes_written_total')) sum += Number(line.split(' ').pop());
  return sum;
}

const WORDS = ('hello there the room is quiet today see you at the meeting soon did you read ' +
  'the notes from yesterday I will send the slides after lunch thanks').split(' ');
function chatData(n) {
  let text = '';
  for (let i = n; text.length < BYTES - 120; i += 7) text += WORDS[i % WORDS.length] + ' ';
  return { user: `user-${n % 97}`, room: 'lobby', seq: n, sent: 1700000000000 + n * 13, text };
}

async function fanout(deflate) {
  const channel = `bench-${deflate ? 'z' : 'plain'}-${Math.random().toString(36).slice(2)}`;
  const subs = [];
  for (let i = 0; i < SUBS; i += 50)
    subs.push(...await Promise.all(Array.from({ length: Math.min(50, SUBS - i) }, () => open(deflate))));
  let done = 0;
  let finish;
  const all = new Promise((r) => { finish = r; });
  await Promise.all(subs.map((ws) => new Promise((resolve) => {
    let got = 0;
    ws.on('message', (d) => {
      const s = d.toString();
      if (s.startsWith('{"type":"subscribed"')) return resolve();
      if (s.includes('"type":"event"') && ++got === EVENTS && ++done === SUBS) finish();
    });
    ws.send(JSON.stringify({ type: 'subscribe', channel, id: 2 }));
  })));
  const pub = await open(false);
  const bytes0 = await bytesWritten();
  const t0 = process.hrtime.bigint();
  const cpu0 = serverCpuSeconds();
  let acked = 0;
  const window = 100;
  await new Promise((resolve) => {
    let sent = 0;
    const more = () => {
      while (sent < EVENTS && sent - acked < window) {
        ++sent;
        pub.send(JSON.stringify({ type: 'publish', channel, event: 'chat.message', id: sent, data: chatData(sent) }));
      }
    };
    pub.on('message', () => {
      if (++acked === EVENTS) resolve();
      else more();
    });
    more();
  });
  await all;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = serverCpuSeconds() - cpu0;
  // Includes the publisher's acks (one small frame per event, both modes alike).
  const bytes = (await bytesWritten()) - bytes0;
  for (const ws of [...subs, pub]) ws.terminate();
  const n = SUBS * EVENTS;
  return { rate: n / secs, cpuUs: (cpu * 1e6) / n, wire: bytes / n };
}

const rows = [];
for (let r = 0; r < ROUNDS; r++) {
  const row = {};
  for (const deflate of r % 2 ? [true, false] : [false, true]) {
    const k = deflate ? 'z' : 'plain';
    const f = await fanout(deflate);
    row[`${k}_rate`] = f.rate;
    row[`${k}_cpu`] = f.cpuUs;
    row[`${k}_wire`] = f.wire;
    await sleep(200);
  }
  row.rate_ratio = row.z_rate / row.plain_rate;
  row.cpu_ratio = row.z_cpu / row.plain_cpu;
  row.wire_ratio = row.z_wire / row.plain_wire;
  rows.push(row);
  console.log(`round ${r + 1}: deliveries/s plain ${row.plain_rate.toFixed(0)} deflate ${row.z_rate.toFixed(0)} (x${row.rate_ratio.toFixed(2)}); ` +
    `server CPU/delivery plain ${row.plain_cpu.toFixed(2)} us deflate ${row.z_cpu.toFixed(2)} us (x${row.cpu_ratio.toFixed(2)}); ` +
    `wire bytes/delivery plain ${row.plain_wire.toFixed(0)} deflate ${row.z_wire.toFixed(0)} (x${row.wire_ratio.toFixed(2)})`);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`median over ${ROUNDS} rounds (subs ${SUBS}, events ${EVENTS} x ~${BYTES} B chat JSON, level ${LEVEL}, ${WORKERS} workers): ` +
  `deflate/plain deliveries per second ${median(rows.map((r) => r.rate_ratio)).toFixed(2)}, ` +
  `server CPU per delivery ${median(rows.map((r) => r.cpu_ratio)).toFixed(2)}, ` +
  `bytes on the wire per delivery ${median(rows.map((r) => r.wire_ratio)).toFixed(2)}`);
server.kill('SIGTERM');
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
