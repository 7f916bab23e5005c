// GET /api/channels/{channel}/history on a real herald server, run once
// against the memory engine and once against the sqlite engine (temp data
// dir), with [history] max_request=20: pagination forward (after) and
// backward (before) walks every event exactly once; the reply equals the
// WebSocket `history` reply for the same query; percent-encoded channel names
// (chat%3Alobby, a%2Fb); errors (bad channel, bad query values, 405 for other
// methods) in the protocol's JSON error shape; and, with sqlite, the whole
// history, epoch and offsets survive a SIGTERM restart on the same data dir.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { Client, HeraldServer, httpPublish, rawHttp, serverTest, tomlConfig, unique } from './lib/harness.mjs';

const MAX_REQUEST = 20;
const SIZE = 500;

const dataDirs = [];
function tempDataDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-hist-http-'));
  dataDirs.push(dir);
  return path.join(dir, 'data');
}
after(() => {
  for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
});

function config(engine) {
  const sections = { history: { size: SIZE, max_request: MAX_REQUEST } };
  if (engine === 'sqlite') sections.engine = { type: 'sqlite', data_dir: tempDataDir() };
  return tomlConfig(sections);
}

// GET (or another method) of `p` on the server: {status, headers, text, json}.
async function request(server, p, method = 'GET') {
  const res = await fetch(server.url(p), { method, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // left null
  }
  return { status: res.status, headers: res.headers, text, json };
}

function historyPath(channel, params = {}) {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
  return `/api/channels/${encodeURIComponent(channel)}/history${q ? '?' + q : ''}`;
}

async function httpHistory(server, channel, params = {}) {
  const res = await request(server, historyPath(channel, params));
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(Object.keys(res.json), ['channel', 'epoch', 'offset', 'events'], res.text);
  assert.equal(res.json.channel, channel);
  assert.equal(typeof res.json.epoch, 'string');
  assert.ok(Array.isArray(res.json.events), res.text);
  return res.json;
}

function assertError(res, status, code, messagePattern) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json, `error body is not JSON: ${res.text}`);
  assert.equal(res.json.type, 'error', res.text);
  assert.equal(res.json.code, code, res.text);
  assert.equal(typeof res.json.message, 'string', res.text);
  if (messagePattern) assert.match(res.json.message, messagePattern);
}

// Publishes events data={i}, event=`h.<i>` for i in [from, to], alternating
// HTTP and WebSocket publishes, and checks their offsets.
async function publishN(server, client, channel, from, to) {
  for (let i = from; i <= to; i++) {
    const ev = { channel, event: `h.${i}`, data: { i } };
    if (i % 2 === 0) {
      const res = await httpPublish(server, ev);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.offset, i, res.text);
    } else {
      const ack = await client.call({ type: 'publish', ...ev });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      assert.equal(ack.offset, i, JSON.stringify(ack));
    }
  }
}

function checkEvents(events, channel, offsets) {
  assert.deepEqual(
    events.map((e) => e.offset),
    offsets,
  );
  for (const e of events) {
    assert.equal(e.type, 'event', JSON.stringify(e));
    assert.equal(e.channel, channel, JSON.stringify(e));
    assert.equal(e.event, `h.${e.offset}`, JSON.stringify(e));
    assert.deepEqual(e.data, { i: e.offset }, JSON.stringify(e));
    assert.equal(typeof e.ts, 'number', JSON.stringify(e));
  }
}

const range = (from, to) => Array.from({ length: Math.max(0, to - from + 1) }, (_, k) => from + k);

for (const engine of ['memory', 'sqlite']) {
  describe(`HTTP history, ${engine} engine`, () => {
    let server;
    let client;
    before(async () => {
      server = await new HeraldServer({ name: `history-http-${engine}`, config: config(engine) }).start();
      client = await Client.connected(server);
    });
    after(async () => {
      client?.close();
      await server?.stopChecked();
    });
    const t = (name, fn, timeout = 60_000) => serverTest(() => server, name, { timeout }, fn);

    t('an empty channel: epoch, offset 0, no events', async () => {
      const ch = unique('hh-empty');
      const r = await httpHistory(server, ch);
      assert.equal(r.offset, 0);
      assert.deepEqual(r.events, []);
    });

    t('default limit is capped at history.max_request, newest events, oldest first', async () => {
      const ch = unique('hh-cap');
      await publishN(server, client, ch, 1, 45);
      const r = await httpHistory(server, ch);
      assert.equal(r.offset, 45);
      checkEvents(r.events, ch, range(26, 45));
      const big = await httpHistory(server, ch, { limit: 1000 });
      checkEvents(big.events, ch, range(26, 45));
      const small = await httpHistory(server, ch, { limit: 3 });
      checkEvents(small.events, ch, range(43, 45));
      const zero = await httpHistory(server, ch, { limit: 0 });
      assert.deepEqual(zero.events, []);
      assert.equal(zero.offset, 45);
    });

    t('pagination forward (after) and backward (before) walks every event exactly once', async () => {
      const ch = unique('hh-page');
      const N = 57;
      await publishN(server, client, ch, 1, N);
      for (const limit of [1, 7, 20, 50]) {
        // Forward from the start.
        const seen = [];
        let after = 0;
        let epoch = null;
        for (let pages = 0; ; pages++) {
          assert.ok(pages < 100, 'forward pagination does not end');
          const r = await httpHistory(server, ch, { after, limit });
          if (epoch === null) epoch = r.epoch;
          assert.equal(r.epoch, epoch);
          assert.equal(r.offset, N);
          if (r.events.length === 0) break;
          assert.ok(r.events.length <= Math.min(limit, MAX_REQUEST));
          checkEvents(r.events, ch, range(after + 1, after + r.events.length));
          seen.push(...r.events.map((e) => e.offset));
          after = r.events.at(-1).offset;
        }
        assert.deepEqual(seen, range(1, N), `forward, limit ${limit}`);

        // Backward from the newest.
        const back = [];
        let beforeOffset = null;
        for (let pages = 0; ; pages++) {
          assert.ok(pages < 100, 'backward pagination does not end');
          const params = beforeOffset === null ? { limit } : { before: beforeOffset, limit };
          const r = await httpHistory(server, ch, params);
          assert.equal(r.epoch, epoch);
          if (r.events.length === 0) break;
          const top = beforeOffset === null ? N : beforeOffset - 1;
          checkEvents(r.events, ch, range(top - r.events.length + 1, top));
          back.unshift(...r.events.map((e) => e.offset));
          beforeOffset = r.events[0].offset;
        }
        assert.deepEqual(back, range(1, N), `backward, limit ${limit}`);
      }
      // after and before together: a window.
      const w = await httpHistory(server, ch, { after: 10, before: 15 });
      checkEvents(w.events, ch, range(11, 14));
    });

    t('equals the WebSocket history reply for the same query', async () => {
      const ch = unique('hh-same');
      await publishN(server, client, ch, 1, 30);
      const queries = [
        {},
        { limit: 5 },
        { limit: 0 },
        { limit: 500 },
        { before: 10 },
        { before: 10, limit: 3 },
        { after: 25 },
        { after: 3, limit: 4 },
        { after: 5, before: 9 },
        { after: 30 },
        { after: 1000 },
        { before: 1 },
      ];
      for (const q of queries) {
        const ws = await client.call({ type: 'history', channel: ch, ...q });
        assert.equal(ws.type, 'history', JSON.stringify(ws));
        const { type, id, ...wsBody } = ws;
        const http = await httpHistory(server, ch, q);
        assert.deepEqual(http, wsBody, `query ${JSON.stringify(q)}`);
      }
      // Ephemeral events are not in either.
      const eph = await httpPublish(server, { channel: ch, event: 'h.eph', data: null, ephemeral: true });
      assert.equal(eph.status, 200, eph.text);
      const r = await httpHistory(server, ch, { after: 29 });
      checkEvents(r.events, ch, [30]);
    });

    t('percent-encoded channel names are decoded', async () => {
      const ch = `chat:lobby-${unique('hh')}`;
      await publishN(server, client, ch, 1, 3);
      const direct = await httpHistory(server, ch); // encodeURIComponent: chat%3Alobby-…
      checkEvents(direct.events, ch, [1, 2, 3]);
      for (const p of [
        `/api/channels/${ch.replace(':', '%3A')}/history`,
        `/api/channels/${ch.replace(':', '%3a')}/history`,
        `/api/channels/${ch}/history`,
        `/api/channels/${ch.split('').map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join('')}/history`,
      ]) {
        const res = await request(server, p);
        assert.equal(res.status, 200, `${p}: ${res.text}`);
        assert.deepEqual(res.json, direct, p);
      }
      // '/' is allowed in channel names, encoded or not.
      const slash = `${unique('hh')}/sub@x=y.z`;
      await publishN(server, client, slash, 1, 2);
      const a = await request(server, `/api/channels/${slash}/history`);
      const b = await request(server, `/api/channels/${encodeURIComponent(slash)}/history`);
      assert.equal(a.status, 200, a.text);
      assert.equal(a.json.channel, slash);
      checkEvents(a.json.events, slash, [1, 2]);
      assert.deepEqual(b.json, a.json);
    });

    t('bad channel names: 400 bad_request in the protocol error shape', async () => {
      assertError(await request(server, '/api/channels//history'), 400, 'bad_request', /^channel: must not be empty/);
      assertError(await request(server, '/api/channels/chat%20lobby/history'), 400, 'bad_request', /^channel: invalid character ' ' at 4/);
      assertError(await request(server, '/api/channels/a!b/history'), 400, 'bad_request', /^channel: invalid character '!' at 1/);
      assertError(await request(server, '/api/channels/a%2/history'), 400, 'bad_request', /^channel:/);
      assertError(await request(server, '/api/channels/a%zzb/history'), 400, 'bad_request', /^channel:/);
      assertError(await request(server, '/api/channels/a%00b/history'), 400, 'bad_request', /^channel: invalid byte 0x00 at 1/);
      assertError(await request(server, `/api/channels/${'x'.repeat(256)}/history`), 400, 'bad_request', /^channel: too long \(max 255 bytes\)/);
      const ok = await request(server, `/api/channels/${'x'.repeat(255)}/history`);
      assert.equal(ok.status, 200, ok.text);
      // Raw bytes that are not URL-safe, sent as is.
      const raw = await rawHttp(server.port, 'GET /api/channels/a\xffb/history HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.equal(raw.status, 400, raw.body);
      assert.equal(JSON.parse(raw.body).code, 'bad_request');
    });

    t('bad query values: 400 bad_request naming the parameter; unknown ones are ignored', async () => {
      const ch = unique('hh-q');
      for (const [param, values] of Object.entries({
        limit: ['-1', '1.5', '1e2', 'abc', '', ' 1', '18446744073709551616', '0x10'],
        before: ['-3', 'x', '', '10.0'],
        after: ['+1', 'null', '', '99999999999999999999'],
      })) {
        for (const v of values) {
          const res = await request(server, `/api/channels/${ch}/history?${param}=${encodeURIComponent(v)}`);
          assertError(res, 400, 'bad_request', new RegExp(`^${param}: must be a non-negative integer`));
        }
        const bare = await request(server, `/api/channels/${ch}/history?${param}`);
        assertError(bare, 400, 'bad_request', new RegExp(`^${param}:`));
        const dup = await request(server, `/api/channels/${ch}/history?${param}=1&${param}=2`);
        assertError(dup, 400, 'bad_request', new RegExp(`^${param}:`));
      }
      await publishN(server, client, ch, 1, 4);
      const res = await request(server, `/api/channels/${ch}/history?foo=bar&limit=2&x&LIMIT=zz&=&&`);
      assert.equal(res.status, 200, res.text);
      checkEvents(res.json.events, ch, [3, 4]);
      const max = await request(server, `/api/channels/${ch}/history?after=18446744073709551615&before=0`);
      assert.equal(max.status, 200, max.text);
      assert.deepEqual(max.json.events, []);
    });

    t('only GET and HEAD: other methods get 405 with Allow', async () => {
      const ch = unique('hh-m');
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const res = await request(server, `/api/channels/${ch}/history`, method);
        assertError(res, 405, 'bad_request');
        assert.match(res.headers.get('allow') ?? '', /GET/);
      }
      const head = await request(server, `/api/channels/${ch}/history`, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.text, '');
      // Neighbouring paths are not this route.
      assertError(await request(server, '/api/channels/history'), 404, 'bad_request');
      assertError(await request(server, `/api/channels/${ch}/historyx`), 404, 'bad_request');
      assertError(await request(server, `/api/channels/${ch}`), 404, 'bad_request');
    });

    if (engine === 'sqlite') {
      t('after a SIGTERM restart on the same data dir the history is all there', async () => {
        const restart = await new HeraldServer({ name: 'history-http-restart', config: config('sqlite') }).start();
        try {
          const c = await Client.connected(restart);
          const ch = `chat:${unique('hh-restart')}`;
          const N = 75;
          await publishN(restart, c, ch, 1, N);
          const beforeRestart = [];
          for (let after = 0; after < N; after += MAX_REQUEST) {
            beforeRestart.push(...(await httpHistory(restart, ch, { after })).events);
          }
          const epoch = (await httpHistory(restart, ch)).epoch;
          c.close();

          await restart.stopChecked();
          await restart.start();

          const seen = [];
          let after = 0;
          for (;;) {
            const r = await httpHistory(restart, ch, { after });
            assert.equal(r.epoch, epoch, 'epoch kept across the restart');
            assert.equal(r.offset, N, 'last offset kept across the restart');
            if (r.events.length === 0) break;
            seen.push(...r.events);
            after = r.events.at(-1).offset;
          }
          checkEvents(seen, ch, range(1, N));
          assert.deepEqual(seen, beforeRestart, 'same events (ts, data, from) after the restart');
          // Offsets continue; the epoch stays.
          const c2 = await Client.connected(restart);
          await publishN(restart, c2, ch, N + 1, N + 2);
          const r = await httpHistory(restart, ch, { limit: 3 });
          assert.equal(r.epoch, epoch);
          checkEvents(r.events, ch, [N, N + 1, N + 2]);
          c2.close();
        } finally {
          await restart.stopChecked();
        }
      });
    }
  });
}
