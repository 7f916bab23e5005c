// Chromium's own EventSource against the SSE fallback (issue 16 item 3,
// docs/protocol.md section 14): a page served by Herald opens
// `new EventSource('/sse?channel=…')` and gets the channel's events in
// order, each with its `<epoch>:<offset>` lastEventId. Then the server is
// killed; while it is down a backend publishes (through a second server on
// the same sqlite data directory); when the server is back on the same port
// the browser reconnects by itself, sending Last-Event-ID, and Herald
// replays exactly the missed events (recovered:true), then live ones, each
// once. A stream refused with 401 (no token for a members channel) is not
// retried by the browser (readyState CLOSED).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { HeraldServer, httpPublish, tomlConfig, unique } from '../integration/node/lib/harness.mjs';

const PAGE = `<!doctype html><title>herald sse</title><pre id="log"></pre><script>
const log = (s) => { document.getElementById('log').textContent += s + '\\n'; };
const es = new EventSource('/sse?channel=' + encodeURIComponent(location.hash.slice(1)));
es.onmessage = (m) => {
  const j = JSON.parse(m.data);
  if (j.type === 'subscribed') {
    log('subscribed ' + j.recovered + ' ' + m.lastEventId);
    for (const e of j.events) log('event ' + e.offset + ' ' + JSON.stringify(e.data));
  } else if (j.type === 'event') {
    log('event ' + j.offset + ' ' + JSON.stringify(j.data) + ' id=' + m.lastEventId);
  }
};
es.onerror = () => log('error ' + es.readyState);
</script>`;

let dir;
let data;
let browser;
let server;

function config() {
  return tomlConfig({ server: { sse_retry_ms: 200 }, engine: { type: 'sqlite', data_dir: data } }) +
    '[auth]\n[[auth.keys]]\nname = "k"\nalgorithms = ["HS256"]\nsecret = "' + 'k'.repeat(40) + '"\n' +
    '[namespaces.pub]\nanonymous = true\n[namespaces.members]\n';
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-sse-'));
  data = path.join(dir, 'data');
  fs.mkdirSync(data);
  fs.mkdirSync(path.join(dir, 'public'));
  fs.writeFileSync(path.join(dir, 'public', 'index.html'), PAGE);
  server = await new HeraldServer({ name: 'sse-e2e', staticDir: path.join(dir, 'public'), config: config() }).start();
  browser = await chromium.launch({
    executablePath: process.env.HERALD_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stopChecked();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function logLines(page) {
  return (await page.textContent('#log')).split('\n').filter(Boolean);
}

async function waitLog(page, pred, what) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (pred(await logLines(page))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; page log:\n${(await logLines(page)).join('\n')}`);
}

async function publish(srv, channel, value) {
  const r = await httpPublish(srv, { channel, event: 'e', data: value });
  assert.equal(r.status, 200, r.text);
  return r.json.offset;
}

const eventOffsets = (lines) => lines.filter((l) => l.startsWith('event ')).map((l) => Number(l.split(' ')[1]));

test('EventSource gets events in order and recovers what it missed across a server restart', { timeout: 90_000 }, async () => {
  const ch = 'pub:' + unique('sse');
  const page = await browser.newPage();
  try {
    await page.goto(server.url(`/#${ch}`));
    await waitLog(page, (l) => l.some((x) => x.startsWith('subscribed')), 'subscribed');
    for (let i = 1; i <= 3; i++) assert.equal(await publish(server, ch, `live ${i}`), i);
    await waitLog(page, (l) => eventOffsets(l).length === 3, '3 events');
    const lines = await logLines(page);
    const epoch = lines[0].split(' ')[2].split(':')[0];
    assert.ok(lines.at(-1).endsWith(`id=${epoch}:3`), lines.at(-1));

    const port = server.port;
    server.kill();
    assert.notEqual(await server.waitExit(10_000), null);
    await waitLog(page, (l) => l.some((x) => x.startsWith('error')), 'the error event');
    const backend = await new HeraldServer({ name: 'sse-backend', config: config() }).start();
    try {
      for (let i = 4; i <= 6; i++) assert.equal(await publish(backend, ch, `missed ${i}`), i);
    } finally {
      await backend.stopChecked();
    }
    await server.start({ port });
    await waitLog(page, (l) => l.filter((x) => x.startsWith('subscribed')).length === 2, 'the reconnection');
    const resub = (await logLines(page)).filter((x) => x.startsWith('subscribed'))[1];
    assert.equal(resub, `subscribed true ${epoch}:6`);
    assert.equal(await publish(server, ch, 'after'), 7);
    await waitLog(page, (l) => eventOffsets(l).length === 7, '7 events');
    assert.deepEqual(eventOffsets(await logLines(page)), [1, 2, 3, 4, 5, 6, 7]);
  } finally {
    await page.close();
  }
});

test('a refused stream (401) is not retried by the browser', { timeout: 60_000 }, async () => {
  const ch = 'members:' + unique('no');
  const page = await browser.newPage();
  try {
    await page.goto(server.url(`/#${ch}`));
    await waitLog(page, (l) => l.includes('error 2'), 'readyState CLOSED');
    await publish(server, ch, 'secret');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await logLines(page), ['error 2']);
  } finally {
    await page.close();
  }
});
