// Chromium over wss:// and https:// (issue 16 item 1): a page served by
// Herald over TLS opens a WebSocket to the same origin, subscribes, and gets
// an event published over https. Chromium brings its own TLS stack
// (BoringSSL) and offers h2 by ALPN; Herald must agree on http/1.1 and speak
// TLS 1.3 to it. The certificate is made by the test (openssl req) and
// trusted by its key's hash (--ignore-certificate-errors-spki-list), not by
// turning checks off.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { HeraldServer, READY_TIMEOUT_MS, sleep, tomlConfig, unique } from '../integration/node/lib/harness.mjs';

const PAGE = `<!doctype html><title>herald wss</title><pre id="log"></pre><script>
const log = (s) => { document.getElementById('log').textContent += s + '\\n'; };
const ws = new WebSocket('wss://' + location.host + '/ws');
ws.onopen = () => ws.send(JSON.stringify({ type: 'connect', id: 1 }));
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.type === 'connected') ws.send(JSON.stringify({ type: 'subscribe', id: 2, channel: location.hash.slice(1) }));
  else if (msg.type === 'subscribed') log('subscribed');
  else if (msg.type === 'event') log('event ' + JSON.stringify(msg.data));
};
ws.onclose = (e) => log('closed ' + e.code);
</script>`;

let dir;
let server;
let browser;
let ca;

function openssl(args, input) {
  return execFileSync('openssl', args, { cwd: dir, input, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
}

function post(url, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

class TlsServer extends HeraldServer {
  url(p = '/') {
    return `https://localhost:${this.port}${p}`;
  }
  async waitReady() {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exit !== null) throw new Error(`herald exited during start-up\n${this.logTail()}`);
      const ok = await new Promise((resolve) => {
        https.get(this.url('/healthz'), { ca }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        }).on('error', () => resolve(false));
      });
      if (ok) return;
      await sleep(50);
    }
    throw new Error(`no /healthz over TLS\n${this.logTail()}`);
  }
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-tls-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  ca = fs.readFileSync(path.join(dir, 'cert.pem'));
  const pub = openssl(['x509', '-in', 'cert.pem', '-pubkey', '-noout']);
  const der = openssl(['pkey', '-pubin', '-outform', 'der'], pub);
  const spki = openssl(['dgst', '-sha256', '-binary'], der).toString('base64');
  fs.mkdirSync(path.join(dir, 'public'));
  fs.writeFileSync(path.join(dir, 'public', 'index.html'), PAGE);
  server = await new TlsServer({
    name: 'tls-e2e',
    staticDir: path.join(dir, 'public'),
    config: tomlConfig({
      server: { tls_cert_file: path.join(dir, 'cert.pem'), tls_key_file: path.join(dir, 'key.pem') },
      engine: { type: 'memory' },
    }),
  }).start();
  browser = await chromium.launch({
    executablePath: process.env.HERALD_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      `--ignore-certificate-errors-spki-list=${spki}`],
  });
});

after(async () => {
  await browser?.close();
  await server?.stopChecked();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('Chromium loads a page over https and gets an event over wss', async () => {
  const ch = unique('tls');
  const page = await browser.newPage();
  try {
    const res = await page.goto(server.url(`/#${ch}`));
    assert.equal(res.status(), 200);
    const security = await res.securityDetails();
    assert.match(security.protocol, /TLS 1\.[23]/);
    await page.waitForFunction(() => document.getElementById('log').textContent.includes('subscribed'), null, { timeout: 20_000 });
    assert.equal(await post(server.url('/api/publish'), { channel: ch, event: 'e', data: { hello: 'tls' } }), 200);
    await page.waitForFunction(() => document.getElementById('log').textContent.includes('event {"hello":"tls"}'), null, { timeout: 20_000 });
  } catch (e) {
    throw new Error(`${e.message}\npage log: ${await page.textContent('#log').catch(() => '?')}\n${server.logTail()}`);
  } finally {
    await page.close();
  }
});
