// Shared harness for Herald's Node integration tests: starts and stops the
// real `herald` binary on a free 127.0.0.1 port (binary from env HERALD_BIN,
// default <repo>/build/release/herald), keeps its output for failure
// reports, and provides a protocol v1 client over the `ws` package, an HTTP
// helper and a raw-socket WebSocket client (hand-made frames, pausable
// reading) for slow-consumer tests.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const READY_TIMEOUT_MS = 30_000; // generous: the ASan build is slow to start
export const RECV_TIMEOUT_MS = 10_000;

export function heraldBin() {
  return process.env.HERALD_BIN || path.join(REPO, 'build', 'release', 'herald');
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function unique(prefix = 'ch') {
  return `${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// TOML text from {section: {key: value}}; values are JSON-encoded, which is
// valid TOML for strings, numbers, booleans and arrays of those.
export function tomlConfig(sections) {
  let out = '';
  for (const [section, keys] of Object.entries(sections)) {
    out += `[${section}]\n`;
    for (const [k, v] of Object.entries(keys)) out += `${k} = ${JSON.stringify(v)}\n`;
    out += '\n';
  }
  return out;
}

// The test process's environment without Herald settings, so that only the
// test's own config file and flags configure the server.
function serverEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^HERALD_(SERVER|LIMITS|HISTORY|ENGINE)_/.test(k) || k === 'HERALD_CONFIG') continue;
    env[k] = v;
  }
  return env;
}

const ALL_SERVERS = new Set();
process.on('exit', () => {
  for (const s of ALL_SERVERS) s.kill();
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const s of ALL_SERVERS) s.kill();
    process.exit(130);
  });
}

const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'];

export class HeraldServer {
  constructor({ config = null, staticDir = null, workers = 2, name = 'herald' } = {}) {
    this.name = name;
    this.workers = workers;
    this.staticDir = staticDir;
    this.tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-it-'));
    this.logPath = path.join(this.tmpdir, 'server.log');
    this.configPath = null;
    if (config !== null) {
      this.configPath = path.join(this.tmpdir, 'herald.toml');
      fs.writeFileSync(this.configPath, config);
    }
    this.proc = null;
    this.exit = null; // {code, signal} once exited
    this.log = '';
  }

  // Starts the server on a free port, or on `port` (e.g. the port of an
  // earlier run, to restart it where its clients reconnect).
  async start({ port = null } = {}) {
    const bin = heraldBin();
    try {
      fs.accessSync(bin, fs.constants.X_OK);
    } catch {
      throw new Error(`herald binary not found or not executable: ${bin} (build it, or set HERALD_BIN)`);
    }
    let lastError;
    // Another attempt on another port if the free port was taken meanwhile;
    // none on a given port, where an exit is the result to report.
    const attempts = port === null ? 3 : 1;
    for (let attempt = 0; attempt < attempts; attempt++) {
      this.port = port ?? (await freePort());
      const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--workers', String(this.workers)];
      if (this.configPath) args.push('--config', this.configPath);
      if (this.staticDir) args.push('--static-dir', this.staticDir);
      this.appendLog(`$ ${bin} ${args.join(' ')}\n`);
      this.exit = null;
      const proc = spawn(bin, args, { cwd: this.tmpdir, env: serverEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      this.proc = proc;
      ALL_SERVERS.add(this);
      proc.stdout.on('data', (d) => this.appendLog(d.toString()));
      proc.stderr.on('data', (d) => this.appendLog(d.toString()));
      this.exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
          this.exit = { code, signal };
          resolve(this.exit);
        });
      });
      try {
        await this.waitReady();
        return this;
      } catch (e) {
        lastError = e;
        if (this.exit === null) {
          this.kill();
          throw e;
        }
      }
    }
    throw lastError;
  }

  appendLog(text) {
    this.log += text;
    fs.appendFileSync(this.logPath, text);
  }

  async waitReady() {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exit !== null) {
        throw new Error(`herald exited (${JSON.stringify(this.exit)}) during start-up\n${this.logTail()}`);
      }
      try {
        const res = await fetch(this.url('/healthz'), { signal: AbortSignal.timeout(2000) });
        const body = await res.text();
        if (res.status === 200 && JSON.parse(body).status === 'ok') return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    throw new Error(`herald did not answer /healthz within ${READY_TIMEOUT_MS} ms\n${this.logTail()}`);
  }

  url(p = '/') {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  wsUrl(p = '/ws') {
    return `ws://127.0.0.1:${this.port}${p}`;
  }

  alive() {
    return this.proc !== null && this.exit === null;
  }

  logTail(limit = 8000) {
    const text = this.log.length > limit ? '...\n' + this.log.slice(-limit) : this.log;
    return `--- ${this.name} log (${this.logPath}) ---\n${text}--- end of log ---`;
  }

  async healthy() {
    try {
      const res = await fetch(this.url('/healthz'), { signal: AbortSignal.timeout(5000) });
      return res.status === 200 && (await res.json()).status === 'ok';
    } catch {
      return false;
    }
  }

  kill() {
    if (this.proc && this.exit === null) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  // Resolves {code, signal} once the process has exited, or null after `ms`.
  async waitExit(ms) {
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  // Teardown of a server shared by a test file: it must still be running (no
  // crash), exit 0 on SIGTERM, and have no sanitizer report in its log.
  // Kills it in every case.
  async stopChecked() {
    try {
      if (!this.proc) return;
      if (this.exit !== null) {
        throw new Error(`herald died during the tests (${JSON.stringify(this.exit)})\n${this.logTail()}`);
      }
      this.proc.kill('SIGTERM');
      const exit = await this.waitExit(15_000);
      if (exit === null) throw new Error(`herald did not exit within 15 s of SIGTERM\n${this.logTail()}`);
      if (exit.code !== 0) {
        throw new Error(`herald exited with ${JSON.stringify(exit)} on SIGTERM\n${this.logTail()}`);
      }
      this.checkLogClean();
    } finally {
      this.kill();
      if (this.proc && this.exit === null) await this.waitExit(10_000);
      ALL_SERVERS.delete(this);
    }
  }

  checkLogClean() {
    for (const m of SANITIZER_MARKERS) {
      if (this.log.includes(m)) throw new Error(`sanitizer report in the herald log (${m})\n${this.logTail(20000)}`);
    }
  }
}

// A node:test test whose failure message carries the server's log.
export function serverTest(getServer, name, options, fn) {
  return test(name, options, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      const server = getServer();
      const tail = server ? server.logTail() : '(no server)';
      const wrapped = new Error(`${e?.message ?? e}\n${tail}`, { cause: e });
      wrapped.stack = `${wrapped.message}\n${e?.stack ?? ''}`;
      throw wrapped;
    }
  });
}

// ---------------------------------------------------------------------------
// Protocol v1 client over `ws`.

export class Client {
  constructor(ws) {
    this.ws = ws;
    this.queue = []; // {msg, raw} not yet consumed
    this.waiters = new Set();
    this.onMessage = null; // optional hook: (msg, raw) => true to consume
    this.autoPong = true; // answer {"type":"ping"} with {"type":"pong"}
    this.nextId = 1000;
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    ws.on('error', () => {}); // surfaced through 'close'
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.queue.push({ msg: { type: '__binary__' }, raw: data });
      } else {
        const raw = data.toString('utf8');
        let msg;
        try {
          msg = JSON.parse(raw);
        } catch {
          msg = { type: '__invalid_json__' };
        }
        if (msg.type === 'ping' && this.autoPong) {
          this.send({ type: 'pong' }); // keepalive, as every real client does
          return;
        }
        if (this.onMessage && this.onMessage(msg, raw)) return;
        this.queue.push({ msg, raw });
      }
      this.wake();
    });
  }

  static async open(server, { path = '/ws', headers = {} } = {}) {
    const ws = new WebSocket(server.wsUrl(path), {
      perMessageDeflate: false,
      headers,
      handshakeTimeout: RECV_TIMEOUT_MS,
      maxPayload: 64 * 1024 * 1024,
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    return new Client(ws);
  }

  static async connected(server) {
    const c = await Client.open(server);
    const reply = await c.call({ type: 'connect' });
    if (reply.type !== 'connected') throw new Error(`connect failed: ${JSON.stringify(reply)}`);
    c.clientId = reply.client;
    return c;
  }

  wake() {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  send(msg) {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  // The first queued message matching `pred` (removed from the queue),
  // waiting up to `timeoutMs`. Fails when the connection closes first.
  async take(pred, timeoutMs = RECV_TIMEOUT_MS, what = 'a message') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((e) => pred(e.msg));
      if (i >= 0) {
        const [e] = this.queue.splice(i, 1);
        this.lastRaw = e.raw;
        return e.msg;
      }
      if (this.closeInfo) {
        throw new Error(`connection closed (${JSON.stringify(this.closeInfo)}) while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no ${what} within ${timeoutMs} ms; queued: ${JSON.stringify(this.queue.slice(0, 5).map((e) => e.msg))}`);
      }
      await new Promise((resolve) => {
        const waiter = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.waiters.delete(waiter);
          resolve();
        }, left);
        this.waiters.add(waiter);
      });
    }
  }

  // The next message, strictly in arrival order.
  next(timeoutMs = RECV_TIMEOUT_MS) {
    return this.take(() => true, timeoutMs, 'message');
  }

  async call(msg, timeoutMs = RECV_TIMEOUT_MS) {
    const m = { ...msg };
    if (!('id' in m)) m.id = ++this.nextId;
    this.send(m);
    return this.take((r) => r.id === m.id, timeoutMs, `reply to ${JSON.stringify(m).slice(0, 200)}`);
  }

  async subscribe(channel, extra = {}) {
    const reply = await this.call({ type: 'subscribe', channel, ...extra });
    if (reply.type !== 'subscribed') throw new Error(`subscribe ${channel} failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  close() {
    try {
      this.ws.close(1000);
    } catch {
      // already closed
    }
  }

  terminate() {
    this.ws.terminate();
  }
}

// ---------------------------------------------------------------------------
// HTTP

export async function httpPublish(server, body, { raw = false } = {}) {
  const res = await fetch(server.url('/api/publish'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(RECV_TIMEOUT_MS),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // left null
  }
  return { status: res.status, headers: res.headers, text, json };
}

// One raw HTTP/1.1 request over a fresh socket (no path normalisation,
// arbitrary bytes); resolves {status, headers, body}.
export function rawHttp(port, request, timeoutMs = RECV_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete HTTP response within ${timeoutMs} ms: ${buf.toString('latin1').slice(0, 300)}`));
    }, timeoutMs);
    const tryParse = (ended) => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (ended) {
          clearTimeout(timer);
          reject(new Error(`connection closed without an HTTP response: ${buf.toString('latin1')}`));
        }
        return;
      }
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const body = buf.subarray(end + 4);
      const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : null;
      if ((len !== null && body.length >= len) || ended) {
        clearTimeout(timer);
        sock.destroy();
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body: body.toString('utf8') });
      }
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      tryParse(false);
    });
    sock.on('end', () => tryParse(true));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.write(request);
  });
}

// ---------------------------------------------------------------------------
// Raw WebSocket over net.Socket: hand-made frames, reading can be paused.

export function maskedFrame(opcode, payload, { fin = true } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const n = data.length;
  let head;
  if (n < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | n]);
  } else if (n < 65536) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  const key = crypto.randomBytes(4);
  const masked = Buffer.alloc(n);
  for (let i = 0; i < n; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, masked]);
}

// Incremental parser of (unmasked) server frames.
export class FrameParser {
  constructor() {
    this.buf = Buffer.alloc(0);
  }

  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames = [];
    for (;;) {
      if (this.buf.length < 2) break;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      if (b1 & 0x80) throw new Error('server sent a masked frame');
      let len = b1 & 0x7f;
      let pos = 2;
      if (len === 126) {
        if (this.buf.length < 4) break;
        len = this.buf.readUInt16BE(2);
        pos = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) break;
        len = Number(this.buf.readBigUInt64BE(2));
        pos = 10;
      }
      if (this.buf.length < pos + len) break;
      frames.push({ fin: !!(b0 & 0x80), opcode: b0 & 0x0f, payload: this.buf.subarray(pos, pos + len) });
      this.buf = this.buf.subarray(pos + len);
    }
    return frames;
  }
}

export class RawWebSocket {
  // Connects and upgrades; frames then go to `onFrame` while reading.
  static async connect(port, { path = '/ws' } = {}) {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.setNoDelay(true);
    const key = crypto.randomBytes(16).toString('base64');
    sock.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const raw = new RawWebSocket(sock);
    const head = await raw.readHead();
    if (!/^HTTP\/1\.1 101/.test(head)) throw new Error(`upgrade refused: ${head}`);
    const expected = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    if (!head.toLowerCase().includes(`sec-websocket-accept: ${expected.toLowerCase()}`)) {
      throw new Error(`bad Sec-WebSocket-Accept: ${head}`);
    }
    raw.startFrames();
    return raw;
  }

  constructor(sock) {
    this.sock = sock;
    this.pre = Buffer.alloc(0);
    this.frames = [];
    this.bytesRead = 0;
    this.ended = false;
    this.error = null;
    this.waiters = new Set();
    sock.on('error', (e) => {
      this.error = e;
      this.wake();
    });
    sock.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  wake() {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  readHead() {
    return new Promise((resolve, reject) => {
      const onData = (d) => {
        this.pre = Buffer.concat([this.pre, d]);
        const end = this.pre.indexOf('\r\n\r\n');
        if (end >= 0) {
          this.sock.off('data', onData);
          const head = this.pre.subarray(0, end).toString('latin1');
          this.pre = this.pre.subarray(end + 4);
          resolve(head);
        }
      };
      this.sock.on('data', onData);
      this.sock.once('close', () => reject(new Error('closed during upgrade')));
    });
  }

  startFrames() {
    this.parser = new FrameParser();
    const feed = (d) => {
      this.bytesRead += d.length;
      for (const f of this.parser.push(d)) this.frames.push(f);
      this.wake();
    };
    if (this.pre.length) feed(this.pre);
    this.sock.on('data', feed);
  }

  sendText(text) {
    this.sock.write(maskedFrame(0x1, text));
  }

  // Writes a frame and resolves with the write error (null when it went out).
  writeFrame(opcode, payload) {
    return new Promise((resolve) => {
      if (this.sock.destroyed) {
        resolve(this.error || new Error('socket destroyed'));
        return;
      }
      this.sock.write(maskedFrame(opcode, payload), (err) => resolve(err || null));
    });
  }

  pause() {
    this.sock.pause();
  }

  resume() {
    this.sock.resume();
  }

  async nextFrame(timeoutMs = RECV_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.frames.length) return this.frames.shift();
      if (this.ended || this.error) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const waiter = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.waiters.delete(waiter);
          resolve();
        }, left);
        this.waiters.add(waiter);
      });
    }
  }

  async nextJson(timeoutMs = RECV_TIMEOUT_MS) {
    const f = await this.nextFrame(timeoutMs);
    if (!f) throw new Error(`connection ended (${this.error})`);
    if (f.opcode !== 0x1) throw new Error(`expected a text frame, got opcode ${f.opcode}`);
    return JSON.parse(f.payload.toString('utf8'));
  }

  destroy() {
    this.sock.destroy();
  }
}
