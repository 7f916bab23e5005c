// Chromium and permessage-deflate (issue 16 item 2): every browser offers
// the extension, so a page served by Herald with server.compression = true
// opens a WebSocket, and the test checks that Chromium negotiated it
// (`ws.extensions`) and that events Herald sends compressed (over the
// threshold) and uncompressed (under it) arrive intact, as does a large
// message Chromium itself compresses (a publish). Another Herald with
// compression off must negotiate nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { HeraldServer, tomlConfig, unique } from '../integration/node/lib/harness.mjs';

const PAGE = `<!doctype html><title>herald deflate</title><pre id="log"></pre><script>
const log = (s) => { document.getElementById('log').textContent += s + '\\n'; };
const ch = location.hash.slice(1);
const ws = new WebSocket('ws://' + location.host + '/ws');
ws.onopen = () => {
  log('extensions ' + JSON.stringify(ws.extensions));
  ws.send(JSON.stringify({ type: 'connect', id: 1 }));
};
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.type === 'connected') ws.send(JSON.stringify({ type: 'subscribe', id: 2, channel: ch }));
  else if (msg.type === 'subscribed') log('subscribed');
  else if (msg.type === 'event') log('event ' + msg.offset + ' ' + JSON.stringify(msg.data).length + ' ' + JSON.stringify(msg.data).slice(0, 40));
  else if (msg.type === 'ack') log('ack ' + msg.id);
};
ws.onclose = (e) => log('closed ' + e.code);
window.publishBig = (n) => ws.send(JSON.stringify({ type: 'publish', id: 3, channel: ch, event: 'e',
  data: { from: 'page', text: 'the quick brown fox jumps over the lazy dog '.repeat(n) } }));
</script>`;

let dir;
let on;
let off;
let browser;

function chatData(bytes) {
  const words = 'hello there the room is quiet today see you at the meeting soon'.split(' ');
  let text = '';
  for (let i = 0; text.length < bytes; i += 3) text += words[i % words.length] + ' ';
  return { user: 'alice', text: text.slice(0, bytes) };
}

async function publish(server, channel, data) {
  const res = await fetch(server.url('/api/publish'), {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event: 'e', data }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function waitLog(page, text) {
  await page.waitForFunction((t) => document.getElementById('log').textContent.includes(t), text, { timeout: 20_000 });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-deflate-'));
  fs.mkdirSync(path.join(dir, 'public'));
  fs.writeFileSync(path.join(dir, 'public', 'index.html'), PAGE);
  const start = (compression, name) => new HeraldServer({
    name,
    staticDir: path.join(dir, 'public'),
    config: tomlConfig({ server: { compression, compression_min_bytes: 256 }, engine: { type: 'memory' } }),
  }).start();
  on = await start(true, 'deflate-e2e');
  off = await start(false, 'deflate-off-e2e');
  browser = await chromium.launch({
    executablePath: process.env.HERALD_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close();
  await on?.stopChecked();
  await off?.stopChecked();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('Chromium negotiates permessage-deflate and gets compressed events intact', async () => {
  const ch = unique('deflate');
  const page = await browser.newPage();
  try {
    await page.goto(on.url(`/#${ch}`));
    await waitLog(page, 'subscribed');
    const log = await page.textContent('#log');
    assert.match(log, /extensions "permessage-deflate; server_no_context_takeover; client_no_context_takeover"/);
    const big = chatData(4000);
    await publish(on, ch, big);  // compressed by Herald
    await waitLog(page, `event 1 ${JSON.stringify(big).length} ${JSON.stringify(big).slice(0, 40)}`);
    await publish(on, ch, { n: 1 });  // under the threshold: plain
    await waitLog(page, 'event 2 7 {"n":1}');
    for (let i = 0; i < 20; i++) await publish(on, ch, chatData(1000 + i * 100));
    await waitLog(page, 'event 22 ');
    // A message Chromium compresses: Herald inflates it and publishes.
    await page.evaluate(() => window.publishBig(200));
    await waitLog(page, 'ack 3');
    await waitLog(page, 'event 23 ');
    assert.doesNotMatch(await page.textContent('#log'), /closed/);
  } catch (e) {
    throw new Error(`${e.message}\npage log: ${await page.textContent('#log').catch(() => '?')}\n${on.logTail()}`);
  } finally {
    await page.close();
  }
});

test('with server.compression = false Chromium gets no extension', async () => {
  const ch = unique('plain');
  const page = await browser.newPage();
  try {
    await page.goto(off.url(`/#${ch}`));
    await waitLog(page, 'subscribed');
    assert.match(await page.textContent('#log'), /extensions ""/);
    const big = chatData(3000);
    await publish(off, ch, big);
    await waitLog(page, `event 1 ${JSON.stringify(big).length} `);
  } finally {
    await page.close();
  }
});
