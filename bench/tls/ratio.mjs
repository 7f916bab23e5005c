// TLS against plaintext in one run, one server (issue 16 item 1): Herald with
// server.tls_cert_file on --listen and server.listen_plain beside it, so both
// paths share the process, the channels and the machine's load. Rounds
// alternate TLS and plain; each reports
//   connect rate: N WebSocket connects (TCP + TLS handshake + upgrade +
//     `connect`), C at a time, per second;
//   fan-out: S subscribers of one channel, P events of B bytes published
//     over the plain listener; deliveries per second until the last
//     subscriber has the last event, and the server's CPU time per delivery
//     (utime + stime of the herald process from /proc, so the client's
//     share of the shared cores is left out: the steadier figure on a busy
//     machine).
// The client is Node's `ws` (herald-bench has no wss client yet): its own
// TLS and JSON costs are in the figures, on both sides alike, so read the
// ratios, not the absolute numbers.
//
// Usage: node bench/tls/ratio.mjs [--bin build/release/herald] [--rounds 5]
//        [--subs 200] [--events 2000] [--bytes 200] [--connects 500]
//        [--concurrency 50] [--workers 2]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  cleanup, freePort, heraldBin, inBatches, median, openConnected, parseArgs,
  publishWindowed, sleep, startHerald, subscribeAll, tempDir, timed, waitUntilAccepts,
} from '../lib/ratio_kit.mjs';

const args = parseArgs();
const BIN = heraldBin(args);
const ROUNDS = Number(args.rounds ?? 5);
const SUBS = Number(args.subs ?? 200);
const EVENTS = Number(args.events ?? 2000);
const BYTES = Number(args.bytes ?? 200);
const CONNECTS = Number(args.connects ?? 500);
const CONCURRENCY = Number(args.concurrency ?? 50);
const WORKERS = Number(args.workers ?? 2);

const dir = tempDir('herald-tls-bench-');
const ossl = (a) => execFileSync('openssl', a, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
  '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=localhost',
  '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
const ca = fs.readFileSync(path.join(dir, 'cert.pem'));

const tlsPort = await freePort();
const plainPort = await freePort();
const server = startHerald({
  bin: BIN, dir, port: tlsPort, workers: WORKERS, server: `tls_cert_file = "${dir}/cert.pem"
tls_key_file = "${dir}/key.pem"
listen_plain = "127.0.0.1:${plainPort}"
static_dir = ""
`,
});

const url = (tls) => (tls ? `wss://localhost:${tlsPort}/ws` : `ws://127.0.0.1:${plainPort}/ws`);
const open = (tls) => openConnected(url(tls), { ca, perMessageDeflate: false });

await waitUntilAccepts(() => open(false));

async function connectRate(tls) {
  let left = CONNECTS;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (left-- > 0) (await open(tls)).terminate();
  }));
  return CONNECTS / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function fanout(tls) {
  const channel = `bench-${tls ? 'tls' : 'plain'}-${Math.random().toString(36).slice(2)}`;
  const subs = await inBatches(SUBS, () => open(tls));
  const { all } = await subscribeAll(subs, channel, EVENTS);
  const pub = await open(false);
  const pad = 'x'.repeat(Math.max(0, BYTES - 20));
  const { secs, cpu } = await timed(server.pid, async () => {
    await publishWindowed(pub, EVENTS, (id) => ({ type: 'publish', channel, event: 'e', id, data: pad }));
    await all;
  });
  for (const ws of [...subs, pub]) ws.terminate();
  return { rate: (SUBS * EVENTS) / secs, cpuUs: (cpu * 1e6) / (SUBS * EVENTS) };
}

const rows = [];
for (let r = 0; r < ROUNDS; r++) {
  const row = {};
  for (const tls of r % 2 ? [true, false] : [false, true]) {
    const k = tls ? 'tls' : 'plain';
    row[`${k}_connect_per_s`] = await connectRate(tls);
    const f = await fanout(tls);
    row[`${k}_deliveries_per_s`] = f.rate;
    row[`${k}_cpu_us`] = f.cpuUs;
    await sleep(200);
  }
  row.connect_ratio = row.tls_connect_per_s / row.plain_connect_per_s;
  row.fanout_ratio = row.tls_deliveries_per_s / row.plain_deliveries_per_s;
  row.cpu_ratio = row.tls_cpu_us / row.plain_cpu_us;
  rows.push(row);
  console.log(`round ${r + 1}: connects/s plain ${row.plain_connect_per_s.toFixed(0)} tls ${row.tls_connect_per_s.toFixed(0)} (x${row.connect_ratio.toFixed(2)}); ` +
    `deliveries/s plain ${row.plain_deliveries_per_s.toFixed(0)} tls ${row.tls_deliveries_per_s.toFixed(0)} (x${row.fanout_ratio.toFixed(2)}); ` +
    `server CPU/delivery plain ${row.plain_cpu_us.toFixed(2)} us tls ${row.tls_cpu_us.toFixed(2)} us (x${row.cpu_ratio.toFixed(2)})`);
}
console.log(`median over ${ROUNDS} rounds (subs ${SUBS}, events ${EVENTS} x ${BYTES} B, ${CONNECTS} connects ${CONCURRENCY} at a time, ${WORKERS} workers): ` +
  `TLS/plain connect rate ${median(rows.map((r) => r.connect_ratio)).toFixed(2)}, fan-out ${median(rows.map((r) => r.fanout_ratio)).toFixed(2)}, ` +
  `server CPU per delivery ${median(rows.map((r) => r.cpu_ratio)).toFixed(2)}`);
cleanup(server, dir);
