// bench/peers/uws/server.mjs: comparison peer for bench/compare. A
// uWebSockets.js server speaking Herald's core protocol subset (subscribe,
// unsubscribe, publish -> event + ack, pong) with uWS's native pub/sub:
// ws.subscribe(channel) and app.publish(channel, event), so fan-out happens in
// C++ (one JSON.parse and one JSON.stringify per publish in JS).
//
// The official uWebSockets.js is not on the npm registry; the package
// @trufflesuite/uws-js-unofficial republishes it with prebuilt binaries. Its
// entry point silently falls back to a pure-JS implementation when the native
// addon does not load, so this file loads the addon from binaries/ directly
// and exits with an error if that fails: a run of this peer is always the
// native uWebSockets.js.
//
// Usage: node server.mjs [PORT]      (or PORT=... env; default 8082)
//        listens on 127.0.0.1 (HOST env to change), accepts any path.
// Prints "uws ready port=P uws=VERSION addon=FILE node=VERSION" once listening.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

const pkgName = '@trufflesuite/uws-js-unofficial';
let pkgDir, pkgVersion;
try {
  const pkgJson = require.resolve(`${pkgName}/package.json`);
  pkgDir = path.dirname(pkgJson);
  pkgVersion = require(pkgJson).version;
} catch (e) {
  console.error(`uws: ${pkgName} is not installed (run bench/peers/install.sh): ${e.message}`);
  process.exit(1);
}
const addonFile = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
let uWS;
try {
  uWS = require(path.join(pkgDir, 'binaries', addonFile));
} catch (e) {
  console.error(`uws: the native uWebSockets.js addon ${addonFile} did not load (no pure-JS fallback is used): ${e.message}`);
  process.exit(1);
}
if (typeof uWS.App !== 'function') {
  console.error(`uws: ${addonFile} loaded but has no App(): not uWebSockets.js`);
  process.exit(1);
}

const port = Number(process.argv[2] ?? process.env.PORT ?? 8082);
const host = process.env.HOST ?? '127.0.0.1';
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`uws: bad port ${process.argv[2] ?? process.env.PORT}`);
  process.exit(2);
}

const decoder = new TextDecoder();

function reply(ws, obj) {
  ws.send(JSON.stringify(obj), false, false);
}

function error(ws, id, code, message) {
  const e = { type: 'error' };
  if (id !== undefined) e.id = id;
  e.code = code;
  e.message = message;
  reply(ws, e);
}

let app;

function onMessage(ws, buf, isBinary) {
  if (isBinary) {
    ws.end(1003, 'binary messages are not supported');
    return;
  }
  let msg;
  try {
    msg = JSON.parse(decoder.decode(buf));
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
      if (ws.isSubscribed(ch)) return error(ws, id, 'bad_request', `already subscribed to ${ch}`);
      ws.subscribe(ch);
      if (id !== undefined) reply(ws, { type: 'subscribed', id, channel: ch });
      return;
    }
    case 'unsubscribe': {
      const ch = msg.channel;
      if (typeof ch !== 'string' || ch.length === 0) return error(ws, id, 'bad_request', 'channel: required string');
      if (!ws.unsubscribe(ch)) return error(ws, id, 'not_subscribed', `not subscribed to ${ch}`);
      if (id !== undefined) reply(ws, { type: 'unsubscribed', id, channel: ch });
      return;
    }
    case 'publish': {
      const ch = msg.channel;
      if (typeof ch !== 'string' || ch.length === 0) return error(ws, id, 'bad_request', 'channel: required string');
      if (typeof msg.event !== 'string') return error(ws, id, 'bad_request', 'event: required string');
      if (!('data' in msg)) return error(ws, id, 'bad_request', 'data: required');
      // app.publish reaches every subscriber, the publisher included
      // (ws.publish would skip it).
      app.publish(ch, JSON.stringify({ type: 'event', channel: ch, event: msg.event, data: msg.data }), false, false);
      if (id !== undefined) reply(ws, { type: 'ack', id });
      return;
    }
    case 'connect':
      if (id !== undefined) reply(ws, { type: 'connected', id, client: 'uws', ping: 25, version: '1' });
      return;
    case 'pong':
      return;
    default:
      return error(ws, id, typeof msg.type === 'string' ? 'unknown_type' : 'bad_request', 'unknown type');
  }
}

app = uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  // Herald's defaults: 4 MiB queued per client, then the client is closed
  // (uWS would otherwise silently skip a slow subscriber).
  maxBackpressure: 4 * 1024 * 1024,
  closeOnBackpressureLimit: true,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  message: onMessage,
});

let listenSocket = null;
app.listen(host, port, (ls) => {
  if (!ls) {
    console.error(`uws: cannot listen on ${host}:${port}`);
    process.exit(1);
  }
  listenSocket = ls;
  console.log(`uws ready port=${uWS.us_socket_local_port(ls)} uws=${pkgVersion} addon=${addonFile} node=${process.version}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (listenSocket) uWS.us_listen_socket_close(listenSocket);
    process.exit(0);
  });
}
