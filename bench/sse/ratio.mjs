// SSE against WebSocket fan-out in one run, one server (issue 16 item 3):
// rounds alternate the two transports on the same process, so both share
// the machine's load. Each round: S subscribers of one channel (S WebSocket
// clients that connect and subscribe, or S GET /sse streams), P events of B
// bytes published over a WebSocket with a window of acks; reports
// deliveries per second until the last subscriber has the last event, and
// the server's CPU time per delivery (utime + stime of the herald process
// from /proc, leaving out the clients' share of the shared cores: the
// steadier figure on a busy machine). SSE subscribers are raw sockets that
// count events in the byte stream; WebSocket ones are Node's `ws`, so the
// clients' costs differ: read the server CPU ratio first.
//
// --channels 2: every subscriber also subscribes a second, quiet channel
// (the SSE stream then has a combined id, made per client and event).
//
// Usage: node bench/sse/ratio.mjs [--bin build/release/herald] [--rounds 5]
//        [--subs 1000] [--events 1000] [--bytes 200] [--workers 2] [--channels 1]
import net from 'node:net';
import {
  cleanup, freePort, heraldBin, inBatches, median, openConnected, parseArgs,
  publishWindowed, sleep, startHerald, tempDir, timed, waitUntilAccepts,
} from '../lib/ratio_kit.mjs';

const args = parseArgs();
const BIN = heraldBin(args);
const ROUNDS = Number(args.rounds ?? 5);
const SUBS = Number(args.subs ?? 1000);
const EVENTS = Number(args.events ?? 1000);
const BYTES = Number(args.bytes ?? 200);
const WORKERS = Number(args.workers ?? 2);
const CHANNELS = Number(args.channels ?? 1);

const dir = tempDir('herald-sse-bench-');
const port = await freePort();
const server = startHerald({
  bin: BIN, dir, port, workers: WORKERS, server: `static_dir = ""
`,
});

const openWs = () => openConnected(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });

await waitUntilAccepts(openWs);

const MARK = '"type":"event"';

// A subscriber: resolves `ready` once subscribed; calls onEvent per event.
function wsSubscriber(channel, onEvent) {
  return openWs().then((ws) => new Promise((resolve) => {
    let subscribed = 0;
    ws.on('message', (d) => {
      const s = d.toString();
      if (s.startsWith('{"type":"subscribed"')) {
        if (++subscribed === CHANNELS) resolve(ws);
      } else if (s.includes(MARK)) onEvent();
    });
    for (let c = 0; c < CHANNELS; c++)
      ws.send(JSON.stringify({ type: 'subscribe', channel: c ? `${channel}-${c}` : channel, id: 2 + c }));
  }));
}

function sseSubscriber(channel, onEvent) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      const q = Array.from({ length: CHANNELS }, (_, c) => `channel=${c ? `${channel}-${c}` : channel}`).join('&');
      sock.write(`GET /sse?${q} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
    let carry = '';
    let subscribed = false;
    sock.setEncoding('latin1');
    sock.on('error', reject);
    sock.on('data', (chunk) => {
      const text = carry + chunk;
      // The response waits for every subscription: once it starts, all are in.
      if (!subscribed && text.includes('"type":"subscribed"')) {
        subscribed = true;
        resolve({ terminate: () => sock.destroy() });
      }
      let from = 0;
      let at;
      while ((at = text.indexOf(MARK, from)) >= 0) {
        onEvent();
        from = at + MARK.length;
      }
      carry = text.slice(Math.max(from, text.length - MARK.length + 1));
    });
  });
}

async function fanout(sse) {
  const channel = `bench-${sse ? 'sse' : 'ws'}-${Math.random().toString(36).slice(2)}`;
  let done = 0;
  let finish;
  const all = new Promise((r) => { finish = r; });
  const subs = await inBatches(SUBS, () => {
    let got = 0;
    const onEvent = () => { if (++got === EVENTS && ++done === SUBS) finish(); };
    return sse ? sseSubscriber(channel, onEvent) : wsSubscriber(channel, onEvent);
  });
  const pub = await openWs();
  const pad = 'x'.repeat(Math.max(0, BYTES - 20));
  const { secs, cpu } = await timed(server.pid, async () => {
    await publishWindowed(pub, EVENTS, (id) => ({ type: 'publish', channel, event: 'e', id, data: pad }));
    await all;
  });
  for (const s of [...subs, pub]) s.terminate();
  return { rate: (SUBS * EVENTS) / secs, cpuUs: (cpu * 1e6) / (SUBS * EVENTS) };
}

const rows = [];
for (let r = 0; r < ROUNDS; r++) {
  const row = {};
  for (const sse of r % 2 ? [true, false] : [false, true]) {
    const k = sse ? 'sse' : 'ws';
    const f = await fanout(sse);
    row[`${k}_deliveries_per_s`] = f.rate;
    row[`${k}_cpu_us`] = f.cpuUs;
    await sleep(500);
  }
  row.fanout_ratio = row.sse_deliveries_per_s / row.ws_deliveries_per_s;
  row.cpu_ratio = row.sse_cpu_us / row.ws_cpu_us;
  rows.push(row);
  console.log(`round ${r + 1}: deliveries/s ws ${row.ws_deliveries_per_s.toFixed(0)} sse ${row.sse_deliveries_per_s.toFixed(0)} (x${row.fanout_ratio.toFixed(2)}); ` +
    `server CPU/delivery ws ${row.ws_cpu_us.toFixed(2)} us sse ${row.sse_cpu_us.toFixed(2)} us (x${row.cpu_ratio.toFixed(2)})`);
}
console.log(`median over ${ROUNDS} rounds (1 -> ${SUBS} subscribers, ${CHANNELS} channel(s) each, ${EVENTS} events x ${BYTES} B, ${WORKERS} workers): ` +
  `SSE/WebSocket fan-out ${median(rows.map((r) => r.fanout_ratio)).toFixed(2)}, ` +
  `server CPU per delivery ${median(rows.map((r) => r.cpu_ratio)).toFixed(2)}`);
cleanup(server, dir);
