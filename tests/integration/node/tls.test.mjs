// wss:// and https:// with the Node `ws` client and Node's https (issue 16
// item 1): a server with server.tls_cert_file/tls_key_file from a CA the test
// makes with the openssl command line. Many subscribers over TLS get every
// event of an HTTPS publish burst in order (frames larger than a TLS record
// among them), a 3 MiB static file comes back intact over https, and a
// client that does not trust the CA is refused without harming the others.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import WebSocket from 'ws';
import { Client, HeraldServer, READY_TIMEOUT_MS, RECV_TIMEOUT_MS, serverTest, sleep, tomlConfig, unique } from './lib/harness.mjs';

const SUBSCRIBERS = 40;
const EVENTS = 60;
const BIG = crypto.randomBytes(3 * 1024 * 1024 + 17);

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makePki(dir) {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=herald node test ca'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=herald node test'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
}

// GET or POST over https trusting `ca`; resolves {status, body: Buffer}.
function request(url, { ca, method = 'GET', body = null } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method, ca, timeout: RECV_TIMEOUT_MS,
      headers: body ? { 'content-type': 'application/json' } : {},
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

class TlsServer extends HeraldServer {
  constructor(opts, ca) {
    super(opts);
    this.ca = ca;
  }
  url(p = '/') {
    return `https://localhost:${this.port}${p}`;
  }
  wsUrl(p = '/ws') {
    return `wss://localhost:${this.port}${p}`;
  }
  async waitReady() {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exit !== null) throw new Error(`herald exited during start-up\n${this.logTail()}`);
      try {
        const res = await request(this.url('/healthz'), { ca: this.ca });
        if (res.status === 200) return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    throw new Error(`herald did not answer /healthz over TLS\n${this.logTail()}`);
  }
}

async function openWss(server, { ca = server.ca } = {}) {
  const ws = new WebSocket(server.wsUrl(), { ca, perMessageDeflate: false, handshakeTimeout: RECV_TIMEOUT_MS, maxPayload: 64 * 1024 * 1024 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const c = new Client(ws);
  const reply = await c.call({ type: 'connect' });
  assert.equal(reply.type, 'connected');
  return c;
}

let server;
let dir;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-node-tls-'));
  makePki(dir);
  const staticDir = path.join(dir, 'public');
  fs.mkdirSync(staticDir);
  fs.writeFileSync(path.join(staticDir, 'big.bin'), BIG);
  server = await new TlsServer({
    name: 'tls',
    staticDir,
    config: tomlConfig({
      server: { tls_cert_file: path.join(dir, 'server.crt'), tls_key_file: path.join(dir, 'server.key') },
      engine: { type: 'memory' },
    }),
  }, fs.readFileSync(path.join(dir, 'ca.crt'))).start();
});
after(async () => {
  await server?.stopChecked();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

serverTest(() => server, `${SUBSCRIBERS} wss subscribers get ${EVENTS} https-published events in order`, {}, async () => {
  const ch = unique();
  const subs = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => openWss(server)));
  await Promise.all(subs.map((s) => s.subscribe(ch)));
  for (let n = 1; n <= EVENTS; n++) {
    // Every tenth event is larger than a TLS record (16 KiB).
    const pad = n % 10 === 0 ? 'y'.repeat(50_000) : '';
    const res = await request(server.url('/api/publish'), { ca: server.ca, method: 'POST', body: { channel: ch, event: 'e', data: { n, pad } } });
    assert.equal(res.status, 200, res.body.toString());
  }
  for (const s of subs) {
    for (let n = 1; n <= EVENTS; n++) {
      const msg = await s.take((m) => m.type === 'event');
      assert.equal(msg.data.n, n);
      assert.equal(msg.data.pad.length, n % 10 === 0 ? 50_000 : 0);
    }
    s.close();
  }
});

serverTest(() => server, 'a 3 MiB static file over https arrives intact', {}, async () => {
  const res = await request(server.url('/big.bin'), { ca: server.ca });
  assert.equal(res.status, 200);
  assert.equal(res.body.length, BIG.length);
  assert.ok(res.body.equals(BIG));
});

serverTest(() => server, 'a client that does not trust the CA is refused; the server serves the next', {}, async () => {
  await assert.rejects(openWss(server, { ca: [] }), /self[- ]signed|unable to (get|verify)|certificate/i);
  const c = await openWss(server);
  const ch = unique();
  await c.subscribe(ch);
  const ack = await c.call({ type: 'publish', channel: ch, event: 'e', data: 1 });
  assert.equal(ack.type, 'ack');
  c.close();
});
