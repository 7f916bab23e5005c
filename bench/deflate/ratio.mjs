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
// Usage: node bench/deflate/ratio.mjs [--bin build/release/herald] [--rounds 5]
//        [--subs 200] [--events 2000] [--bytes 1024] [--workers 2] [--level 6]
import {
  cleanup, freePort, heraldBin, inBatches, median, metricSum, openConnected, parseArgs,
  publishWindowed, sleep, startHerald, subscribeAll, tempDir, timed, waitUntilAccepts,
} from '../lib/ratio_kit.mjs';

const args = parseArgs();
const BIN = heraldBin(args);
const ROUNDS = Number(args.rounds ?? 5);
const SUBS = Number(args.subs ?? 200);
const EVENTS = Number(args.events ?? 2000);
const BYTES = Number(args.bytes ?? 1024);
const WORKERS = Number(args.workers ?? 2);
const LEVEL = Number(args.level ?? 6);

const dir = tempDir('herald-deflate-bench-');
const port = await freePort();
const server = startHerald({
  bin: BIN, dir, port, workers: WORKERS, server: `static_dir = ""
compression = true
compression_min_bytes = 256
compression_level = ${LEVEL}
`,
});

// A client that offers permessage-deflate or not; fails unless the server
// agreed to exactly that.
const open = (deflate) => openConnected(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: deflate },
  (ws) => {
    const negotiated = (ws.extensions || '').includes('permessage-deflate');
    return negotiated !== deflate ? new Error(`extensions "${ws.extensions}"`) : null;
  });

await waitUntilAccepts(() => open(false));

const bytesWritten = () => metricSum(port, 'herald_bytes_written_total');

const WORDS = ('hello there the room is quiet today see you at the meeting soon did you read ' +
  'the notes from yesterday I will send the slides after lunch thanks').split(' ');
function chatData(n) {
  let text = '';
  for (let i = n; text.length < BYTES - 120; i += 7) text += WORDS[i % WORDS.length] + ' ';
  return { user: `user-${n % 97}`, room: 'lobby', seq: n, sent: 1700000000000 + n * 13, text };
}

async function fanout(deflate) {
  const channel = `bench-${deflate ? 'z' : 'plain'}-${Math.random().toString(36).slice(2)}`;
  const subs = await inBatches(SUBS, () => open(deflate));
  const { all } = await subscribeAll(subs, channel, EVENTS);
  const pub = await open(false);
  const bytes0 = await bytesWritten();
  const { secs, cpu } = await timed(server.pid, async () => {
    await publishWindowed(pub, EVENTS,
      (id) => ({ type: 'publish', channel, event: 'chat.message', id, data: chatData(id) }));
    await all;
  });
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
console.log(`median over ${ROUNDS} rounds (subs ${SUBS}, events ${EVENTS} x ~${BYTES} B chat JSON, level ${LEVEL}, ${WORKERS} workers): ` +
  `deflate/plain deliveries per second ${median(rows.map((r) => r.rate_ratio)).toFixed(2)}, ` +
  `server CPU per delivery ${median(rows.map((r) => r.cpu_ratio)).toFixed(2)}, ` +
  `bytes on the wire per delivery ${median(rows.map((r) => r.wire_ratio)).toFixed(2)}`);
cleanup(server, dir);
