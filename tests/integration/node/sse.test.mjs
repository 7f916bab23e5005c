// The SSE fallback (GET /sse, docs/protocol.md section 14) with an
// EventSource-style client written here on Node's fetch (the WHATWG
// parsing rules: data/id/retry fields, comments, blank line dispatches,
// reconnection after `retry` ms with the Last-Event-ID header). What must
// hold: events arrive in order with their ids; a TCP proxy that cuts the
// stream in the middle of an event makes the client reconnect and Herald
// replays exactly what was missed (no loss, no duplicate); a refused stream
// (no token where the namespace needs one) is an HTTP 401 the client does
// not retry.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before } from 'node:test';
import { HeraldServer, httpPublish, serverTest, sleep, tomlConfig, unique } from './lib/harness.mjs';

// A minimal EventSource: messages as {data, lastEventId}; reconnects after
// the stream ends, sending Last-Event-ID; stops for good on a non-200.
class MiniEventSource {
  constructor(url) {
    this.url = url;
    this.lastEventId = '';
    this.retry = 3000;
    this.messages = [];
    this.opens = 0;
    this.failed = null; // {status, body} once refused
    this.closed = false;
    this.waiters = [];
    this.loop();
  }

  async loop() {
    while (!this.closed) {
      this.abort = new AbortController();
      try {
        const headers = { accept: 'text/event-stream' };
        if (this.lastEventId) headers['last-event-id'] = this.lastEventId;
        const res = await fetch(this.url, { headers, signal: this.abort.signal });
        if (res.status !== 200 || !res.headers.get('content-type')?.startsWith('text/event-stream')) {
          this.failed = { status: res.status, body: await res.text() };
          this.wake();
          return;
        }
        this.opens++;
        await this.read(res.body);
      } catch {
        // a cut stream: reconnect below
      }
      if (this.closed) return;
      await sleep(this.retry);
    }
  }

  async read(body) {
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    let id = null;
    for await (const chunk of body) {
      buf += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (id !== null) this.lastEventId = id;
          if (data.length) {
            this.messages.push({ data: data.join('\n'), lastEventId: this.lastEventId });
            this.wake();
          }
          data = [];
          id = null;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (name === 'data') data.push(value);
        else if (name === 'id') id = value;
        else if (name === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
      }
    }
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  // Resolves once pred() holds (checked after each message).
  async until(pred, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; messages: ${JSON.stringify(this.messages).slice(0, 2000)}`);
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, Math.min(left, 200));
      });
    }
  }

  events() {
    return this.messages.map((m) => JSON.parse(m.data)).flatMap((j) =>
      j.type === 'event' ? [j] : j.type === 'subscribed' ? j.events : []);
  }

  close() {
    this.closed = true;
    this.abort?.abort();
  }
}

// A TCP proxy to the server that, once armed, forwards the server's bytes
// only up to the middle of the `cutAt`-th event after arming, then cuts
// both sides (what a proxy timing out mid-response does).
function cuttingProxy(targetPort) {
  const state = { armed: false, cutAt: 0, seen: 0, cuts: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    client.pipe(upstream);
    upstream.on('data', (chunk) => {
      if (!state.armed) {
        client.write(chunk);
        return;
      }
      const text = chunk.toString('latin1');
      let from = 0;
      let at;
      while ((at = text.indexOf('"type":"event"', from)) >= 0) {
        state.seen++;
        if (state.seen === state.cutAt) {
          state.armed = false;
          state.cuts++;
          client.write(chunk.subarray(0, at + 40)); // half an event: data: line unfinished
          client.destroy();
          upstream.destroy();
          return;
        }
        from = at + 1;
      }
      client.write(chunk);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, state, port: server.address().port })));
}

let server;
before(async () => {
  server = await new HeraldServer({
    name: 'sse',
    config: tomlConfig({ server: { sse_retry_ms: 100 } }) +
      '\n[auth]\n[[auth.keys]]\nname = "k"\nalgorithms = ["HS256"]\nsecret = "' + 'k'.repeat(40) + '"\n' +
      '[namespaces.pub]\nanonymous = true\n[namespaces.members]\n',
  }).start();
});
after(async () => {
  await server?.stopChecked();
});

async function publish(channel, data) {
  const r = await httpPublish(server, { channel, event: 'e', data });
  assert.equal(r.status, 200, r.text);
  return r.json.offset;
}

serverTest(() => server, 'events arrive in order with <epoch>:<offset> ids', {}, async () => {
  const ch = 'pub:' + unique('order');
  const es = new MiniEventSource(server.url(`/sse?channel=${encodeURIComponent(ch)}`));
  try {
    await es.until(() => es.messages.some((m) => JSON.parse(m.data).type === 'subscribed'));
    const epoch = JSON.parse(es.messages.find((m) => JSON.parse(m.data).type === 'subscribed').data).epoch;
    const offsets = [];
    for (let i = 0; i < 20; i++) offsets.push(await publish(ch, { i }));
    await es.until(() => es.events().length === 20);
    assert.deepEqual(es.events().map((e) => e.offset), offsets);
    assert.deepEqual(es.events().map((e) => e.data.i), [...Array(20).keys()]);
    assert.equal(es.lastEventId, `${epoch}:${offsets.at(-1)}`);
    assert.equal(es.retry, 100);
  } finally {
    es.close();
  }
});

serverTest(() => server, 'a cut in the middle of an event: reconnect with Last-Event-ID recovers exactly', {}, async () => {
  const ch = 'pub:' + unique('cut');
  const proxy = await cuttingProxy(server.port);
  const es = new MiniEventSource(`http://127.0.0.1:${proxy.port}/sse?channel=${encodeURIComponent(ch)}`);
  try {
    await es.until(() => es.opens === 1 && es.messages.length >= 2);
    proxy.state.armed = true;
    proxy.state.cutAt = 4;
    const offsets = [];
    for (let i = 0; i < 10; i++) offsets.push(await publish(ch, { i, pad: 'z'.repeat(500) }));
    await es.until(() => es.events().length >= 10);
    assert.equal(proxy.state.cuts, 1);
    assert.ok(es.opens >= 2, 'the client reconnected');
    const got = es.events().map((e) => e.offset);
    assert.deepEqual(got, offsets, 'every event once, in order');
    const resub = es.messages.map((m) => JSON.parse(m.data)).filter((j) => j.type === 'subscribed');
    assert.equal(resub.at(-1).recovered, true);
    // More live events after the recovery, no duplicate.
    offsets.push(await publish(ch, 'after'));
    await es.until(() => es.events().length === 11);
    assert.deepEqual(es.events().map((e) => e.offset), offsets);
  } finally {
    es.close();
    proxy.server.close();
  }
});

serverTest(() => server, 'a refused stream (no token for a members channel) is a 401, not retried', {}, async () => {
  const ch = 'members:' + unique('r');
  const es = new MiniEventSource(server.url(`/sse?channel=${encodeURIComponent(ch)}`));
  try {
    await es.until(() => es.failed !== null);
    assert.equal(es.failed.status, 401);
    const body = JSON.parse(es.failed.body);
    assert.equal(body.type, 'error');
    assert.equal(body.code, 'unauthorized');
    await publish(ch, 'x');
    await sleep(300);
    assert.equal(es.messages.length, 0);
  } finally {
    es.close();
  }
});
