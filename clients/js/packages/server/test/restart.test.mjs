// The no-loss restart test (issue 6, item 3): a subscriber on @herald/client
// while a publisher on @herald/server publishes without pause; the server
// (engine sqlite, data directory kept) is killed with SIGKILL and restarted
// on the same port several times. The client reconnects by itself, and its
// received stream must equal exactly what the server stored: every
// acknowledged publish, plus those stored although the publisher saw an
// error, in order, no gap, no duplicate. The publisher's retries (same
// idempotency key) bridge the restarts: publishes sent again across a kill
// must still be stored once, at the offset their call resolved with. Checked against the server's
// history; it cannot pass vacuously (reconnections, and events received
// after each restart, are asserted). Authentication is on, as in production:
// the subscriber connects with a token (a new one on every reconnect) whose
// caps grant the channel, which is closed to anyone else, and the publisher
// uses an API key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Herald } from '@herald/client';
import WebSocket from 'ws';
import { createConnectionToken, HeraldServer } from '../dist/index.js';
import { Server } from '../../client/test/support/server.mjs';
import { sleep, until } from '../../client/test/support/fake-socket.mjs';

const SECRET = 'restart-test-secret-0123456789abcdef-0123';
const API_KEY = 'restart-test-api-key-0123456789';
const CONFIG = `
[engine]
type = "sqlite"
data_dir = "data"

[[auth.keys]]
name = "app"
algorithms = ["HS256"]
secret = "${SECRET}"

[[api.keys]]
name = "backend"
key = "${API_KEY}"
scopes = ["publish", "history"]

[namespaces.restart]
subscribe_access = "capability"
history_access = "capability"
`;

const KILLS = 4;
const PER_ROUND = 40; // acknowledged publishes before each kill, and after the last restart

test('SIGKILL and restart under continuous HTTP publishing: the subscriber gets exactly the stored stream', async () => {
  const server = new Server({ config: CONFIG });
  await server.start();
  // Counts the attempts of each idempotency key: retries across the kills must happen.
  const attempts = new Map();
  const countingFetch = (url, init) => {
    const key = init?.headers?.['idempotency-key'];
    if (key) attempts.set(key, (attempts.get(key) ?? 0) + 1);
    return fetch(url, init);
  };
  const api = new HeraldServer({
    url: `http://127.0.0.1:${server.port}`,
    apiKey: API_KEY,
    timeoutMs: 2000,
    fetch: countingFetch,
    retry: { attempts: 8, initialDelayMs: 50, maxDelayMs: 500 },
  });
  let replayed = 0;
  let tokens = 0;
  const client = new Herald({
    url: server.wsUrl,
    WebSocket,
    token: () => {
      tokens++;
      return createConnectionToken(
        { sub: 'restart-user', caps: { 'restart:*': ['subscribe', 'history'] }, expiresIn: 600 },
        { secret: SECRET },
      );
    },
    reconnect: { initialDelayMs: 50, maxDelayMs: 250, factor: 2, jitter: 0.5 },
    requestTimeoutMs: 5000,
  });
  const channel = 'restart:stream';
  const got = []; // [offset, i] as received
  const recoveries = [];
  const failedRecoveries = [];
  let connects = 0;
  client.on('connected', () => connects++);
  client.on('recovered', (info) => recoveries.push(info));
  client.on('recoveryFailed', (info) => failedRecoveries.push(info));
  client.connect();
  const sub = client.subscribe(channel, { onEvent: (e) => got.push([e.offset, e.data.i]) });

  const acked = []; // [i, offset]
  const failed = []; // i whose publish saw an error
  let running = true;
  let nextI = 1;
  try {
    await sub.ready;
    const publisher = (async () => {
      while (running) {
        const i = nextI++;
        try {
          const r = await api.publish(channel, 'n', { i });
          acked.push([i, r.offset]);
          if (r.replayed) replayed++;
        } catch (e) {
          assert.ok(['unreachable', 'timeout'].includes(e.code), `unexpected publish error: ${e.code} ${e.message}`);
          failed.push(i);
          await sleep(10); // the server is down: do not spin
        }
      }
    })();

    const receivedAfterRestart = [];
    for (let round = 0; round < KILLS; round++) {
      const ackedBefore = acked.length;
      await until(() => acked.length >= ackedBefore + PER_ROUND, 20_000, `round ${round}: ${PER_ROUND} acknowledged publishes`);
      const receivedAtKill = got.length;
      await server.kill();
      await until(() => client.state !== 'connected', 5000, 'the client to see the loss');
      await sleep(100 + 50 * round); // publishes fail meanwhile
      await server.start();
      await until(() => connects === round + 2, 10_000, `reconnect ${round + 1}`);
      await until(() => got.length > receivedAtKill, 10_000, `events after restart ${round + 1}`);
      receivedAfterRestart.push(got.length - receivedAtKill);
    }
    const ackedBefore = acked.length;
    await until(() => acked.length >= ackedBefore + PER_ROUND, 20_000, 'publishes after the last restart');
    running = false;
    await publisher;

    // The stored stream, read back over HTTP page by page.
    const stored = [];
    for (let after = 0; ; ) {
      const page = await api.history(channel, { after, limit: 500 });
      if (page.events.length === 0) break;
      for (const e of page.events) stored.push([e.offset, e.data.i]);
      after = page.events.at(-1).offset;
    }
    await until(() => got.length >= stored.length, 10_000, `the client to receive all ${stored.length} stored events (has ${got.length})`);
    await sleep(100); // nothing more may arrive

    // Offsets contiguous from 1; each publish stored at most once, in publish order.
    assert.deepEqual(stored.map(([o]) => o), Array.from({ length: stored.length }, (_, k) => k + 1));
    const storedI = stored.map(([, i]) => i);
    assert.deepEqual(storedI, [...storedI].sort((a, b) => a - b));
    assert.equal(new Set(storedI).size, storedI.length);
    // Every acknowledged publish is stored, at the offset it was given.
    const byI = new Map(stored.map(([o, i]) => [i, o]));
    for (const [i, offset] of acked) assert.equal(byI.get(i), offset, `acknowledged publish ${i} at offset ${offset}`);
    // The rest of what is stored is publishes that saw an error (stored before the kill, reply lost).
    const ackedI = new Set(acked.map(([i]) => i));
    const failedI = new Set(failed);
    for (const i of storedI) assert.ok(ackedI.has(i) || failedI.has(i), `stored ${i} was published`);
    // The subscriber's stream is exactly the stored one.
    assert.deepEqual(got, stored);

    assert.equal(connects, KILLS + 1);
    // A fresh token for every connection attempt (also those made while the server was down).
    assert.ok(tokens >= connects, `${tokens} tokens for ${connects} connections`);
    assert.equal(failedRecoveries.length, 0, 'the sqlite epoch survives kill -9');
    assert.ok(recoveries.length >= KILLS, JSON.stringify(recoveries));
    const retried = [...attempts.values()].filter((n) => n > 1).length;
    assert.ok(retried > 0 || failed.length > 0, 'some publishes were retried (or failed) while the server was down');
    assert.equal(receivedAfterRestart.length, KILLS);
    assert.ok(acked.length >= (KILLS + 1) * PER_ROUND);
    const storedDespiteError = storedI.filter((i) => failedI.has(i)).length;
    console.log(
      `${acked.length} acknowledged (${retried} retried, ${replayed} replayed), ${failed.length} failed (${storedDespiteError} of them stored), ${stored.length} stored = received; ${KILLS} kills, ${recoveries.reduce((n, r) => n + r.missed, 0)} events recovered`,
    );
  } finally {
    running = false;
    client.close();
    await server.stop();
  }
});
