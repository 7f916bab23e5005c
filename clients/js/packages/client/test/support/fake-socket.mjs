// A fake WebSocket for the unit tests of @herald/client: records what the
// client sends, lets the test play the server (messages, close codes), and
// optionally answers `connect` by itself (with extra fields, or not at all,
// as `onConnect` decides). fakeJwt() makes unsigned tokens whose claims the
// client reads for scheduling.

export function fakeSocketClass({ autoOpen = true, autoConnect = true, ping = 25 } = {}) {
  class FakeSocket {
    static instances = [];
    static autoConnect = autoConnect;
    static ping = ping;
    // (connectMsg, socket) => extra fields of the automatic `connected` reply, or
    // null to send nothing (the test answers, e.g. with an error and a close)
    static onConnect = null;

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closed = null;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      FakeSocket.instances.push(this);
      if (autoOpen) setTimeout(() => this.open(), 0);
    }

    static get last() {
      return FakeSocket.instances[FakeSocket.instances.length - 1];
    }

    open() {
      if (this.readyState !== 0) return;
      this.readyState = 1;
      this.onopen?.({});
    }

    send(text) {
      if (this.readyState !== 1) throw new Error('not open');
      const msg = JSON.parse(text);
      this.sent.push(msg);
      if (msg.type === 'connect' && FakeSocket.autoConnect) {
        const extra = FakeSocket.onConnect ? FakeSocket.onConnect(msg, this) : {};
        if (extra === null) return;
        this.serverSend({ type: 'connected', id: msg.id, client: `c${FakeSocket.instances.length}`, ping: FakeSocket.ping, version: '1', ...extra });
      }
    }

    close(code = 1005, reason = '') {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      this.closed = { code, reason };
      setTimeout(() => this.onclose?.({ code, reason }), 0);
    }

    // --- the test plays the server
    serverSend(obj) {
      this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
    }

    serverClose(code, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }

    sentOfType(type) {
      return this.sent.filter((m) => m.type === type);
    }
  }
  return FakeSocket;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Polls `pred` every 5 ms until it is truthy; fails after `timeoutMs`.
export async function until(pred, timeoutMs = 3000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function waitState(herald, state, timeoutMs = 5000) {
  return until(() => herald.state === state, timeoutMs, `state ${state} (now ${herald.state})`);
}

// A token shaped like a JWT (header.payload.signature, base64url) with these
// claims; the signature is junk: the client never verifies tokens.
export function fakeJwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.c2lnbmF0dXJl`;
}

export const nowSeconds = () => Date.now() / 1000;
