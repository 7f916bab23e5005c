// ratio_kit.mjs: the plumbing shared by the one-server A/B benches
// bench/tls/ratio.mjs, bench/deflate/ratio.mjs and bench/sse/ratio.mjs.
// It owns: their `--key value` argument parsing, Node's `ws` from
// tests/integration/node/node_modules, a free loopback port, a temp dir with
// its herald.toml (the shared engine and limits) and the `herald serve`
// started on it (killed when the script exits), waiting until the server
// accepts, opening a WebSocket that has had its `connected`, connecting
// clients in batches, subscribing WebSockets and counting their events,
// publishing with a window of acks, the server's CPU seconds from /proc (also
// around a timed run), summing a metric from GET /metrics, the median, and
// the cleanup at the end. It touches only the temp dir it made and the
// server it started. What each bench measures (its scenario, server
// options, rows and output lines) stays in the bench.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const WebSocket = require(path.join(repo, 'tests/integration/node/node_modules/ws'));

// `--name value` pairs of argv into { name: 'value' }; the caller converts
// and applies its own defaults.
export function parseArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(argv.reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
    return acc;
  }, []));
}

// The herald binary: --bin, else this checkout's release build.
export const heraldBin = (args) => args.bin ?? path.join(repo, 'build/release/herald');

export const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const tempDir = (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

// Writes dir/herald.toml, the [server] section's lines `server` followed by
// what every ratio bench runs with (the memory engine; limits far above the
// load, so no client is refused or dropped as slow), and starts
// `herald serve` on it, listening on 127.0.0.1:port; SIGKILLed when this
// process exits, whatever the way.
export function startHerald({ bin, dir, server: serverLines, port, workers }) {
  fs.writeFileSync(path.join(dir, 'herald.toml'), `[server]
${serverLines}[engine]
type = "memory"
[limits]
max_connections = 100000
max_outbound_bytes = 67108864
`);
  const server = spawn(bin, ['serve', '--config', path.join(dir, 'herald.toml'), '--listen',
    `127.0.0.1:${port}`, '--workers', String(workers), '--log-level', 'warn'],
  { stdio: ['ignore', 'inherit', 'inherit'] });
  process.on('exit', () => server.kill('SIGKILL'));
  return server;
}

// A WebSocket on `url` that has sent `connect` and read `connected`.
// `check(ws)`, if given, runs once open and may return an Error to reject with.
export function openConnected(url, options, check) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('error', reject);
    ws.once('open', () => {
      const bad = check?.(ws);
      if (bad) reject(bad);
      ws.once('message', (d) => {
        const m = JSON.parse(d);
        if (m.type !== 'connected') reject(new Error(d.toString()));
        else resolve(ws);
      });
      ws.send('{"type":"connect","id":1}');
    });
  });
}

// Retries `open()` (a client that resolves once connected) every 50 ms until
// the server answers; throws the last error after about 10 s.
export async function waitUntilAccepts(open) {
  for (let i = 0; ; i++) {
    try {
      (await open()).terminate();
      return;
    } catch (e) {
      if (i > 200) throw e;
      await sleep(50);
    }
  }
}

// `count` clients made by `make()`, at most `batch` connecting at a time.
export async function inBatches(count, make, batch = 50) {
  const all = [];
  for (let i = 0; i < count; i += batch)
    all.push(...await Promise.all(Array.from({ length: Math.min(batch, count - i) }, make)));
  return all;
}

// Subscribes every WebSocket of `subs` to `channel`; resolves once all have
// their `subscribed`, with a promise that resolves once each has read
// `events` events.
export async function subscribeAll(subs, channel, events) {
  let done = 0;
  let finish;
  const all = new Promise((r) => { finish = r; });
  await Promise.all(subs.map((ws) => new Promise((resolve) => {
    let got = 0;
    ws.on('message', (d) => {
      const s = d.toString();
      if (s.startsWith('{"type":"subscribed"')) return resolve();
      if (s.includes('"type":"event"') && ++got === events && ++done === subs.length) finish();
    });
    ws.send(JSON.stringify({ type: 'subscribe', channel, id: 2 }));
  })));
  return { all };
}

// Sends message(1..count) on `pub` with at most `window` unacknowledged;
// resolves when every one has been answered (each reply counts as an ack).
export function publishWindowed(pub, count, message, window = 100) {
  let acked = 0;
  return new Promise((resolve) => {
    let sent = 0;
    const more = () => {
      while (sent < count && sent - acked < window) pub.send(JSON.stringify(message(++sent)));
    };
    pub.on('message', () => {
      if (++acked === count) resolve();
      else more();
    });
    more();
  });
}

const CLK_TCK = 100;  // sysconf(_SC_CLK_TCK) on Linux
// utime + stime of process `pid`, in seconds (all its threads).
export function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;  // utime, stime
}

// Runs `run()`; returns its wall-clock seconds and the CPU seconds process
// `pid` spent meanwhile.
export async function timed(pid, run) {
  const t0 = process.hrtime.bigint();
  const cpu0 = cpuSeconds(pid);
  await run();
  return { secs: Number(process.hrtime.bigint() - t0) / 1e9, cpu: cpuSeconds(pid) - cpu0 };
}

// The sum over all label sets (workers) of `name` in GET /metrics.
export async function metricSum(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name)) sum += Number(line.split(' ').pop());
  return sum;
}

// The upper median (the middle element for odd lengths).
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Stops the server, removes the temp dir and exits 0.
export function cleanup(server, dir) {
  server.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
