// bench/peers/node-ws/server.mjs: comparison peer for bench/compare. A Node
// `ws` server speaking Herald's core protocol subset (subscribe, unsubscribe,
// publish -> event + ack, pong), written the way web developers write a
// "custom server": a Map of channel -> Set of sockets, JSON.parse per request,
// the event serialized once per publish and sent to each subscriber.
//
// Usage: node server.mjs [PORT]      (or PORT=... env; default 8081)
//        listens on 127.0.0.1 (HOST env to change), accepts any path.
// Prints "node-ws ready port=P ws=VERSION node=VERSION" on stdout once listening.
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';

const require = createRequire(import.meta.url);
const wsVersion = require('ws/package.json').version;

const port = Number(process.argv[2] ?? process.env.PORT ?? 8081);
const host = process.env.HOST ?? '127.0.0.1';
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`node-ws: bad port ${process.argv[2] ?? process.env.PORT}`);
  process.exit(2);
}

/** channel name -> Set of sockets subscribed to it */
const channels = new Map();
/** socket -> Set of channel names it is subscribed to (for cleanup on close) */
const subscriptions = new WeakMap();

function reply(ws, obj) {
  ws.send(JSON.stringify(obj));
}

function error(ws, id, code, message) {
  const e = { type: 'error' };
  if (id !== undefined) e.id = id;
  e.code = code;
  e.message = message;
  reply(ws, e);
}

function onMessage(ws, raw, isBinary) {
  if (isBinary) {
    ws.close(1003, 'binary messages are not supported');
    return;
  }
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    error(ws, undefined, 'invalid_json', 'not valid JSON');
    return;
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    error(ws, undefined, 'invalid_json', 'not a JSON object');
    return;
  }
  const id = msg.id;
  switch (msg.type) {
    case 'subscribe': {
      const ch = msg.channel;
      if (typeof ch !== 'string' || ch.length === 0) return error(ws, id, 'bad_request', 'channel: required string');
      const mine = subscriptions.get(ws);
      if (mine.has(ch)) return error(ws, id, 'bad_request', `already subscribed to ${ch}`);
      let set = channels.get(ch);
      if (!set) channels.set(ch, (set = new Set()));
      set.add(ws);
      mine.add(ch);
      if (id !== undefined) reply(ws, { type: 'subscribed', id, channel: ch });
      return;
    }
    case 'unsubscribe': {
      const ch = msg.channel;
      if (typeof ch !== 'string' || ch.length === 0) return error(ws, id, 'bad_request', 'channel: required string');
      const mine = subscriptions.get(ws);
      if (!mine.delete(ch)) return error(ws, id, 'not_subscribed', `not subscribed to ${ch}`);
      const set = channels.get(ch);
      set.delete(ws);
      if (set.size === 0) channels.delete(ch);
      if (id !== undefined) reply(ws, { type: 'unsubscribed', id, channel: ch });
      return;
    }
    case 'publish': {
      const ch = msg.channel;
      if (typeof ch !== 'string' || ch.length === 0) return error(ws, id, 'bad_request', 'channel: required string');
      if (typeof msg.event !== 'string') return error(ws, id, 'bad_request', 'event: required string');
      if (!('data' in msg)) return error(ws, id, 'bad_request', 'data: required');
      const set = channels.get(ch);
      if (set) {
        const text = JSON.stringify({ type: 'event', channel: ch, event: msg.event, data: msg.data });
        for (const sub of set) sub.send(text);
      }
      if (id !== undefined) reply(ws, { type: 'ack', id });
      return;
    }
    case 'connect':
      if (id !== undefined) reply(ws, { type: 'connected', id, client: 'node-ws', ping: 25, version: '1' });
      return;
    case 'pong':
      return;
    default:
      return error(ws, id, typeof msg.type === 'string' ? 'unknown_type' : 'bad_request', 'unknown type');
  }
}

function onClose(ws) {
  const mine = subscriptions.get(ws);
  if (!mine) return;
  for (const ch of mine) {
    const set = channels.get(ch);
    if (!set) continue;
    set.delete(ws);
    if (set.size === 0) channels.delete(ch);
  }
  mine.clear();
}

const wss = new WebSocketServer({ host, port, perMessageDeflate: false, maxPayload: 64 * 1024, backlog: 4096 });
wss.on('connection', (ws) => {
  subscriptions.set(ws, new Set());
  ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
  ws.on('close', () => onClose(ws));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  console.log(`node-ws ready port=${wss.address().port} ws=${wsVersion} node=${process.version}`);
});
wss.on('error', (e) => {
  console.error(`node-ws: ${e.message}`);
  process.exit(1);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    wss.close();
    for (const c of wss.clients) c.terminate();
    process.exit(0);
  });
}
