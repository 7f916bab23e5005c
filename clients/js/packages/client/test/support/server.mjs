// Starts and stops the real `herald` binary for the SDK's integration tests
// (binary from env HERALD_BIN, default <repo>/build/release/herald), on
// 127.0.0.1 only, on a free port or on a given one (to restart in place),
// optionally with a config file (written to its own temporary directory,
// which is also the working directory, so a relative engine.data_dir
// survives restarts). startIfSupported() tells a binary that does not know a
// feature's config keys yet (a test then skips, saying so) from one that
// fails.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../../..');

// The binary's path and free ports: the integration harness's helpers.
export { freePort, heraldBin } from '../../../../../../tests/integration/node/lib/harness.mjs';
import { freePort, heraldBin } from '../../../../../../tests/integration/node/lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const RUNNING = new Set();
process.on('exit', () => {
  for (const p of RUNNING) p.kill('SIGKILL');
});

/**
 * Starts `server`; resolves `{server, skip: null}`, or `{server: null, skip:
 * reason}` when the binary refuses the config because it does not know a key
 * (or an API key scope) of `feature` yet (a binary from before the feature).
 * Other failures throw.
 */
export async function startIfSupported(server, feature) {
  try {
    return { server: await server.start(), skip: null };
  } catch (e) {
    const unknown = /config error: (.*unknown (?:key\b|scope '|capability ).*)/.exec(server.log);
    if (!unknown) throw e;
    return { server: null, skip: `${feature}: this herald binary (${heraldBin()}) does not know its config yet: ${unknown[1]}` };
  }
}

export class Server {
  constructor({ env = {}, workers = 2, config = null } = {}) {
    this.env = env;
    this.workers = workers;
    this.port = null;
    this.proc = null;
    this.log = '';
    this.tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-sdk-'));
    this.config = null;
    if (config !== null) {
      this.config = path.join(this.tmpdir, 'herald.toml');
      fs.writeFileSync(this.config, config);
    }
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  url(p) {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  // Starts the server (on the same port as before when restarting).
  async start() {
    const bin = heraldBin();
    if (!fs.existsSync(bin)) throw new Error(`herald binary not found: ${bin} (build it, or set HERALD_BIN)`);
    if (this.port === null) this.port = await freePort();
    const env = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!/^HERALD_(SERVER|LIMITS|HISTORY|ENGINE)_/.test(k) && k !== 'HERALD_CONFIG') env[k] = v;
    }
    Object.assign(env, this.env);
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--workers', String(this.workers)];
    if (this.config !== null) args.push('--config', this.config);
    const proc = spawn(bin, args, { cwd: this.tmpdir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    RUNNING.add(proc);
    proc.stdout.on('data', (d) => (this.log += d));
    proc.stderr.on('data', (d) => (this.log += d));
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        RUNNING.delete(proc);
        resolve({ code, signal });
      }),
    );
    let exit = null;
    this.exited.then((e) => (exit = e));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (exit) throw new Error(`herald exited during start-up (${JSON.stringify(exit)})\n${this.log}`);
      try {
        const res = await fetch(this.url('/healthz'), { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) return this;
      } catch {
        // not up yet
      }
      await sleep(30);
    }
    throw new Error(`herald did not become healthy\n${this.log}`);
  }

  // SIGTERM and wait for the exit (SIGKILL after 10 s); resolves the exit status.
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return null;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  // SIGKILL (a crash: no close frames, nothing flushed) and wait for the exit.
  async kill() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return null;
    this.proc.kill('SIGKILL');
    return this.exited;
  }

  // The value of one counter or gauge of GET /metrics.
  async metric(name) {
    const text = await (await fetch(this.url('/metrics'), { signal: AbortSignal.timeout(5000) })).text();
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    if (!m) throw new Error(`metric ${name} not found in:\n${text}`);
    return Number(m[1]);
  }

  async publish(body) {
    const res = await fetch(this.url('/api/publish'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, json: await res.json() };
  }
}
