// Helpers of the example's browser tests: the real herald binary started with
// the example's own herald.toml (only the data directory, the schema path and
// channel_ttl_ms changed), the built app run with `next start`, and Debian's
// Chromium driven by playwright-core. Every process is started on a free
// port of 127.0.0.1 and stopped at the end.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { EXAMPLE, heraldBin } from '../scripts/herald-bin.mjs';

export const UI_TIMEOUT_MS = 20_000;
export const ARTIFACTS = path.join(EXAMPLE, 'test', 'artifacts');
/** What both herald and the app read (the example's README, "Environment"). */
export const SECRETS = {
  HERALD_JWT_SECRET: crypto.randomBytes(48).toString('base64url'),
  HERALD_BACKEND_KEY: crypto.randomBytes(24).toString('base64url'),
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A child process whose output is kept for failure reports. */
class Proc {
  constructor(name) {
    this.name = name;
    this.log = '';
    this.proc = null;
    this.exit = null;
  }

  spawn(cmd, args, options) {
    this.exit = null;
    this.log += `$ ${cmd} ${args.join(' ')}\n`;
    const proc = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout.on('data', (d) => (this.log += d));
    proc.stderr.on('data', (d) => (this.log += d));
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve((this.exit = { code, signal }))));
    RUNNING.add(this);
  }

  async waitHttp(url, ok) {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.exit) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}) during start-up\n${this.tail()}`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'manual' });
        if (ok(res)) return;
      } catch {
        // not up yet
      }
      await sleep(100);
    }
    throw new Error(`${this.name} did not answer ${url} within 60 s\n${this.tail()}`);
  }

  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit. */
  async stop() {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    const exit = await this.exited;
    clearTimeout(timer);
    RUNNING.delete(this);
    return exit;
  }

  tail(limit = 6000) {
    const text = this.log.length > limit ? `...${this.log.slice(-limit)}` : this.log;
    return `--- ${this.name} output ---\n${text}--- end ---`;
  }
}

const RUNNING = new Set();
process.on('exit', () => {
  for (const p of RUNNING) if (!p.exit) p.proc.kill('SIGKILL');
});

/**
 * Herald with the example's herald.toml, on the sqlite engine in its own data
 * directory (kept across restart()), and `channelTtlMs` for the room namespace.
 */
export class Herald extends Proc {
  constructor({ name = 'herald', channelTtlMs = null } = {}) {
    super(name);
    this.dir = tempDir('herald-nextjs-e2e-');
    let config = fs.readFileSync(path.join(EXAMPLE, 'herald.toml'), 'utf8');
    const replace = (re, value) => {
      if (!re.test(config)) throw new Error(`herald.toml has no ${re}`);
      config = config.replace(re, value);
    };
    replace(/^data_dir = .*$/m, `data_dir = ${JSON.stringify(path.join(this.dir, 'data'))}`);
    replace(/^schema = .*$/m, `schema = ${JSON.stringify(path.join(EXAMPLE, 'schema', 'room.json'))}`);
    if (channelTtlMs !== null) replace(/^channel_ttl_ms = .*$/m, `channel_ttl_ms = ${channelTtlMs}`);
    this.config = path.join(this.dir, 'herald.toml');
    fs.writeFileSync(this.config, config);
  }

  async start() {
    this.port ??= await freePort();
    const env = { ...process.env, ...SECRETS };
    delete env.HERALD_CONFIG;
    this.spawn(heraldBin(), ['serve', '--config', this.config, '--listen', `127.0.0.1:${this.port}`, '--workers', '2'], { cwd: this.dir, env });
    await this.waitHttp(this.url('/healthz'), (res) => res.status === 200);
    return this;
  }

  /** Stops (SIGTERM) and starts again on the same port and data directory. */
  async restart() {
    const exit = await this.stop();
    if (exit.code !== 0) throw new Error(`herald exited with ${JSON.stringify(exit)} on SIGTERM\n${this.tail()}`);
    return this.start();
  }

  url(p) {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  /** GET of the HTTP API with the example's API key. */
  async api(p) {
    const res = await fetch(this.url(p), { headers: { authorization: `Bearer ${SECRETS.HERALD_BACKEND_KEY}` } });
    if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
    return res.json();
  }
}

/** The built app (`next build` first) with `next start`, talking to `herald`. */
export class NextApp extends Proc {
  constructor({ herald, roomTtlMs = null, name = 'next' }) {
    super(name);
    this.herald = herald;
    this.roomTtlMs = roomTtlMs;
  }

  async start() {
    if (!fs.existsSync(path.join(EXAMPLE, '.next', 'BUILD_ID'))) throw new Error('the app is not built: run npm run build first');
    this.port = await freePort();
    const env = { ...process.env, ...SECRETS, NEXT_TELEMETRY_DISABLED: '1', HERALD_URL: this.herald.url('') };
    delete env.HERALD_WS_URL;
    delete env.NODE_OPTIONS;
    if (this.roomTtlMs !== null) env.ROOM_TTL_MS = String(this.roomTtlMs);
    const next = path.join(EXAMPLE, 'node_modules', '.bin', 'next');
    this.spawn(next, ['start', '--port', String(this.port), '--hostname', '127.0.0.1'], { cwd: EXAMPLE, env });
    await this.waitHttp(this.url('/'), (res) => res.status === 200);
    return this;
  }

  url(p) {
    return `http://127.0.0.1:${this.port}${p}`;
  }
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.HERALD_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** A new browser context: its own cookies, so another visitor. Collects script errors in page.errors. */
export async function visitor(browser) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  page.on('console', (m) => {
    // The browser logs each refused WebSocket attempt while Herald restarts: expected there.
    if (m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text())) page.errors.push(new Error(`console: ${m.text()}`));
  });
  return page;
}

/** Creates a room from the home page as `name`; returns the room's URL. */
export async function createRoom(page, app, name) {
  await page.goto(app.url('/'));
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Create a private room' }).click();
  await page.waitForURL(/\/room\/[a-z0-9]{12}$/);
  await waitConnected(page);
  return page.url();
}

/** Opens a shared room link as a newcomer and joins as `name`. */
export async function joinRoom(page, url, name, { connected = true } = {}) {
  await page.goto(url);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join' }).click();
  if (connected) await waitConnected(page);
}

export async function waitConnected(page) {
  await page.getByRole('status', { name: 'Connection' }).filter({ hasText: 'Connected' }).waitFor();
}

export async function send(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

export async function messages(page) {
  return page.getByRole('log', { name: 'Messages' }).getByTestId('message-text').allTextContents();
}

/** Waits until the messages shown are exactly `texts`, in order. */
export async function waitMessages(page, texts) {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  let shown = [];
  while (Date.now() < deadline) {
    shown = await messages(page);
    if (JSON.stringify(shown) === JSON.stringify(texts)) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`messages shown: ${JSON.stringify(shown)}, expected: ${JSON.stringify(texts)}`);
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}
