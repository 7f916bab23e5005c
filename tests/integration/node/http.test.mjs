// HTTP side of a real herald server (Node fetch/raw sockets + `ws`
// subscribers): POST /api/publish delivers to WebSocket subscribers and
// shares offsets with WebSocket publishes; bad bodies get 400 with
// invalid_json/bad_request, oversized bodies 413 too_large; /healthz; static
// files from --static-dir (and nothing outside it); unknown paths 404.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { Client, HeraldServer, httpPublish, rawHttp, serverTest, tomlConfig, unique } from './lib/harness.mjs';

const MAX_BODY = 4096;
const INDEX_HTML = '<!doctype html><title>herald test</title><p>static index \u2713</p>\n';
const APP_CSS = 'body { color: #123456; }\n';
const SECRET = 'top-secret-' + unique();
const BIG = crypto.randomBytes(3 * 1024 * 1024 + 17);

let server;
let root;
before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-static-'));
  const staticDir = path.join(root, 'public');
  fs.mkdirSync(path.join(staticDir, 'css'), { recursive: true });
  fs.writeFileSync(path.join(staticDir, 'index.html'), INDEX_HTML);
  fs.writeFileSync(path.join(staticDir, 'css', 'app.css'), APP_CSS);
  fs.writeFileSync(path.join(staticDir, 'big.bin'), BIG);
  fs.writeFileSync(path.join(root, 'secret.txt'), SECRET); // outside the static dir
  server = await new HeraldServer({
    name: 'http',
    staticDir,
    config: tomlConfig({ limits: { max_http_body_bytes: MAX_BODY } }),
  }).start();
});
after(async () => {
  await server?.stopChecked();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

const t = (name, fn, timeout = 30_000) => serverTest(() => server, name, { timeout }, fn);

function assertErrorBody(res, status, code) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json, `error body is not JSON: ${res.text}`);
  assert.equal(res.json.type, 'error', res.text);
  assert.equal(res.json.code, code, res.text);
  assert.equal(typeof res.json.message, 'string', res.text);
}

t('GET /healthz answers 200 {"status":"ok"}', async () => {
  const res = await fetch(server.url('/healthz'));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

t('POST /api/publish delivers to WebSocket subscribers', async () => {
  const ch = unique('http');
  const subs = [];
  for (let i = 0; i < 6; i++) {
    const c = await Client.connected(server);
    await c.subscribe(ch);
    subs.push(c);
  }
  for (let n = 1; n <= 3; n++) {
    const data = { n, text: 'gr\u00fc\u00dfe \ud83d\udc4b', list: [1.5, null, true, { deep: 'x' }] };
    const res = await httpPublish(server, { channel: ch, event: 'http.msg', data });
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(res.json, { offset: n });
    for (const c of subs) {
      const ev = await c.next();
      assert.equal(ev.type, 'event');
      assert.equal(ev.channel, ch);
      assert.equal(ev.event, 'http.msg');
      assert.equal(ev.offset, n);
      assert.deepEqual(ev.data, data);
      assert.equal(typeof ev.ts, 'number');
      assert.ok(Math.abs(ev.ts - Date.now()) < 60_000, `ts should be server time in ms: ${ev.ts}`);
      assert.ok(!('from' in ev), `HTTP publishes have no from: ${JSON.stringify(ev)}`);
    }
  }
  // An ephemeral publish: 200 {}, delivered without offset, not counted.
  const eph = await httpPublish(server, { channel: ch, event: 'http.typing', data: { on: true }, ephemeral: true });
  assert.equal(eph.status, 200, eph.text);
  assert.deepEqual(eph.json, {});
  for (const c of subs) {
    const ev = await c.next();
    assert.equal(ev.event, 'http.typing');
    assert.ok(!('offset' in ev), JSON.stringify(ev));
    assert.deepEqual(ev.data, { on: true });
  }
  // `type` and `id` in the body are ignored.
  const res = await httpPublish(server, { type: 'whatever', id: 77, channel: ch, event: 'http.msg', data: 4 });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { offset: 4 });
  for (const c of subs) assert.equal((await c.next()).offset, 4);
  for (const c of subs) c.close();
});

t('HTTP and WebSocket publishes share one offset sequence', async () => {
  const ch = unique('mixed');
  const sub = await Client.connected(server);
  await sub.subscribe(ch);
  const pub = await Client.connected(server);
  const expected = [];
  for (let n = 1; n <= 10; n++) {
    if (n % 2) {
      const res = await httpPublish(server, { channel: ch, event: 'via.http', data: n });
      assert.deepEqual(res.json, { offset: n }, res.text);
      expected.push(['via.http', n]);
    } else {
      const ack = await pub.call({ type: 'publish', channel: ch, event: 'via.ws', data: n });
      assert.deepEqual({ type: ack.type, offset: ack.offset }, { type: 'ack', offset: n });
      expected.push(['via.ws', n]);
    }
  }
  const got = [];
  for (let n = 1; n <= 10; n++) {
    const ev = await sub.next();
    got.push([ev.event, ev.offset]);
    assert.equal(ev.data, ev.offset);
  }
  assert.deepEqual(got, expected);
  sub.close();
  pub.close();
});

const BAD_BODIES = [
  ['not JSON', 'hello', 'invalid_json'],
  ['truncated JSON', '{"channel":"a","event":"e","data":', 'invalid_json'],
  ['empty body', '', 'invalid_json'],
  ['JSON array', '[{"channel":"a","event":"e","data":1}]', 'invalid_json'],
  ['JSON string', '"publish"', 'invalid_json'],
  ['JSON number', '17', 'invalid_json'],
  ['missing channel', '{"event":"e","data":1}', 'bad_request'],
  ['missing event', '{"channel":"a","data":1}', 'bad_request'],
  ['missing data', '{"channel":"a","event":"e"}', 'bad_request'],
  ['channel not a string', '{"channel":5,"event":"e","data":1}', 'bad_request'],
  ['event not a string', '{"channel":"a","event":["e"],"data":1}', 'bad_request'],
  ['empty channel', '{"channel":"","event":"e","data":1}', 'bad_request'],
  ['channel with a space', '{"channel":"a b","event":"e","data":1}', 'bad_request'],
  ['channel with %', '{"channel":"a%b","event":"e","data":1}', 'bad_request'],
  ['non-ASCII channel', '{"channel":"caf\u00e9","event":"e","data":1}', 'bad_request'],
  ['channel of 256 chars', JSON.stringify({ channel: 'c'.repeat(256), event: 'e', data: 1 }), 'bad_request'],
  ['event with a space', '{"channel":"a","event":"e f","data":1}', 'bad_request'],
  ['event too long', JSON.stringify({ channel: 'a', event: 'e'.repeat(129), data: 1 }), 'bad_request'],
  ['ephemeral not a boolean', '{"channel":"a","event":"e","data":1,"ephemeral":1}', 'bad_request'],
  ['duplicate channel', '{"channel":"a","channel":"a","event":"e","data":1}', 'bad_request'],
  ['trailing garbage', '{"channel":"a","event":"e","data":1} x', 'invalid_json'],
];

t('bad publish bodies get 400 with an error body, and consume no offset', async () => {
  const ch = unique('bad');
  const sub = await Client.connected(server);
  await sub.subscribe(ch);
  for (const [name, body, code] of BAD_BODIES) {
    const res = await httpPublish(server, body.replaceAll('"a"', JSON.stringify(ch)), { raw: true });
    assert.equal(res.status, 400, `${name}: expected 400, got ${res.status} ${res.text}`);
    assertErrorBody(res, 400, code);
  }
  // Nothing was published: the next publish gets offset 1 and is the first
  // event the subscriber sees.
  const res = await httpPublish(server, { channel: ch, event: 'ok', data: 'first' });
  assert.deepEqual(res.json, { offset: 1 });
  const ev = await sub.next();
  assert.equal(ev.offset, 1);
  assert.equal(ev.data, 'first');
  sub.close();
});

t('channel names at the limits are accepted over HTTP', async () => {
  for (const ch of ['c'.repeat(255), `aZ09_-:.@=/${unique()}`]) {
    const res = await httpPublish(server, { channel: ch, event: 'e', data: {} });
    assert.equal(res.status, 200, `${ch}: ${res.text}`);
    assert.deepEqual(res.json, { offset: 1 });
  }
});

t('a body over max_http_body_bytes gets 413 too_large', async () => {
  const ch = unique('big');
  const small = JSON.stringify({ channel: ch, event: 'e', data: 'x'.repeat(MAX_BODY - 200) });
  assert.ok(small.length <= MAX_BODY);
  const ok = await httpPublish(server, small, { raw: true });
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.json, { offset: 1 });

  const big = JSON.stringify({ channel: ch, event: 'e', data: 'x'.repeat(MAX_BODY + 10) });
  const res = await httpPublish(server, big, { raw: true });
  assertErrorBody(res, 413, 'too_large');

  const huge = JSON.stringify({ channel: ch, event: 'e', data: 'x'.repeat(5 * 1024 * 1024) });
  const res2 = await httpPublish(server, huge, { raw: true }).catch((e) => ({ status: 'reset', text: String(e) }));
  // The server may answer 413 before reading everything and close.
  if (res2.status !== 'reset') assertErrorBody(res2, 413, 'too_large');

  // Nothing was stored by the refused requests.
  const after = await httpPublish(server, { channel: ch, event: 'e', data: 2 });
  assert.deepEqual(after.json, { offset: 2 });
  assert.ok(await server.healthy());
});

t('a chunked body is accepted, an oversized chunked body is refused with 413', async () => {
  const ch = unique('chunked');
  const post = (parts) =>
    new Promise((resolve, reject) => {
      const req = http.request(server.url('/api/publish'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' }, // no length: chunked
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      });
      req.on('error', reject);
      for (const p of parts) req.write(p);
      req.end();
    });
  const body = JSON.stringify({ channel: ch, event: 'e', data: { chunked: true } });
  const ok = await post([body.slice(0, 10), body.slice(10, 25), body.slice(25)]);
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(JSON.parse(ok.text), { offset: 1 });

  const big = JSON.stringify({ channel: ch, event: 'e', data: 'y'.repeat(MAX_BODY * 2) });
  const parts = [];
  for (let i = 0; i < big.length; i += 1000) parts.push(big.slice(i, i + 1000));
  const res = await post(parts).catch((e) => ({ status: 'reset', text: String(e) }));
  if (res.status !== 'reset') {
    assert.equal(res.status, 413, res.text);
    assert.equal(JSON.parse(res.text).code, 'too_large');
  }
  const after = await httpPublish(server, { channel: ch, event: 'e', data: 2 });
  assert.deepEqual(after.json, { offset: 2 });
});

t('several requests on one keep-alive connection', async () => {
  const ch = unique('keepalive');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set();
  for (let n = 1; n <= 20; n++) {
    const res = await new Promise((resolve, reject) => {
      const req = http.request(server.url('/api/publish'), {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      });
      req.on('socket', (s) => sockets.add(s));
      req.on('response', (r) => {
        let text = '';
        r.on('data', (d) => (text += d));
        r.on('end', () => resolve({ status: r.statusCode, text }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ channel: ch, event: 'e', data: n }));
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text), { offset: n });
  }
  assert.equal(sockets.size, 1, 'the server should keep the HTTP/1.1 connection alive');
  agent.destroy();
});

t('static files are served from --static-dir', async () => {
  for (const p of ['/', '/index.html']) {
    const res = await fetch(server.url(p));
    assert.equal(res.status, 200, p);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/, p);
    assert.equal(await res.text(), INDEX_HTML, p);
  }
  const css = await fetch(server.url('/css/app.css'));
  assert.equal(css.status, 200);
  assert.match(css.headers.get('content-type') ?? '', /text\/css/);
  assert.equal(await css.text(), APP_CSS);
});

t('a large static file arrives intact', async () => {
  const res = await fetch(server.url('/big.bin'));
  assert.equal(res.status, 200);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(body.length, BIG.length);
  assert.ok(body.equals(BIG), 'static file content differs');
});

t('unknown paths answer 404', async () => {
  for (const p of ['/nope', '/missing.html', '/css/missing.css', '/api/nope', '/healthz/extra']) {
    const res = await fetch(server.url(p));
    assert.equal(res.status, 404, p);
    await res.arrayBuffer();
  }
});

t('files outside --static-dir are never served', async () => {
  for (const p of [
    '/../secret.txt',
    '/css/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2e%2e%2fsecret.txt',
    '/..%2fsecret.txt',
    '/css/%2e%2e/%2e%2e/secret.txt',
    '/..\\secret.txt',
    '//secret.txt',
  ]) {
    const res = await rawHttp(server.port, `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    assert.ok(res.status >= 400 && res.status < 500, `${p}: status ${res.status}`);
    assert.ok(!res.body.includes(SECRET), `${p}: served a file outside the static dir`);
  }
  assert.ok(await server.healthy());
});

t('wrong method on the publish route is refused', async () => {
  const res = await fetch(server.url('/api/publish'));
  assert.ok(res.status >= 400 && res.status < 500, `GET /api/publish: ${res.status}`);
  await res.arrayBuffer();
});

t('pipelined requests on one connection are answered in order', async () => {
  const ch = unique('pipe');
  const net = await import('node:net');
  const bodies = [1, 2, 3].map((n) => JSON.stringify({ channel: ch, event: 'e', data: n }));
  const request = bodies
    .map(
      (b) =>
        `POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`,
    )
    .join('') + 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';
  const text = await new Promise((resolve, reject) => {
    const sock = net.connect(server.port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`pipelined responses incomplete after 10 s: ${buf}`));
    }, 10_000);
    sock.on('data', (d) => (buf += d.toString('utf8')));
    sock.on('end', () => {
      clearTimeout(timer);
      resolve(buf);
    });
    sock.on('error', reject);
    sock.write(request); // all four requests in one write
  });
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [200, 200, 200, 200], text);
  const offsets = [...text.matchAll(/\{"offset":(\d+)\}/g)].map((m) => Number(m[1]));
  assert.deepEqual(offsets, [1, 2, 3], text);
  assert.ok(text.includes('{"status":"ok"}'), text);
});

t('a body that is not valid UTF-8 is refused and never reaches subscribers', async () => {
  const ch = unique('utf8');
  const sub = await Client.connected(server);
  await sub.subscribe(ch);
  for (const bad of [Buffer.from([0xff]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80])]) {
    const body = Buffer.concat([Buffer.from(`{"channel":"${ch}","event":"e","data":"`), bad, Buffer.from('"}')]);
    const res = await fetch(server.url('/api/publish'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const text = await res.text();
    assert.equal(res.status, 400, `invalid UTF-8 ${bad.toString('hex')}: ${res.status} ${text}`);
    assert.equal(JSON.parse(text).code, 'invalid_json', text);
  }
  const ok = await httpPublish(server, { channel: ch, event: 'e', data: 'fine' });
  assert.deepEqual(ok.json, { offset: 1 });
  const ev = await sub.next();
  assert.equal(ev.offset, 1);
  assert.equal(sub.closeInfo, null, 'the subscriber must not have been sent invalid UTF-8');
  sub.close();
});
