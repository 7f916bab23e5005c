// The SSE fallback transport (docs/protocol.md section 14) behind the
// WebSocket interface the client already speaks: SseSocket looks like a
// WebSocket to client.ts (send / onmessage / onclose) and turns the
// client's commands into the one thing an SSE stream can do, a
// `GET /sse?channel=…` held by an EventSource. Owns: the stream's channel
// list, each channel's position (epoch and last offset, from the messages
// it passes on), re-opening the stream with the combined id when the list
// changes, and the replies the stream cannot give (`connected` at once,
// errors for publish and the other requests). Touches nothing else.
//
// - `connect` is answered at once: the token goes with each stream (in the
//   query) and is checked when the stream opens; a stream the server refuses
//   before its first message (EventSource cannot see the status) closes this
//   socket with 4001, which the client treats as refused credentials.
// - `subscribe` adds the channel and re-opens the stream (several subscribes
//   in one tick make one stream) with `last_event_id` built from the
//   positions held, so the other channels recover exactly what the switch
//   would have missed; their recovered events are passed on as `event`
//   messages and their `subscribed` is dropped (the client did not ask). A
//   `subscribed` the client did not ask for with `recovered: false` closes
//   this socket: the client reconnects and subscribes with `recover` itself,
//   and so learns of the gap (onRecoveryFailed).
// - `unsubscribe` removes the channel and re-opens (or ends) the stream.
// - everything else (publish, history, presence, rpc, refresh) is answered
//   with an `error` naming the SSE fallback: publish over the server's HTTP
//   API from a backend, or use a WebSocket.
import type { WebSocketLike } from './types.js';

/** What SseSocket needs of an EventSource (the browser's, or one for Node). */
export interface EventSourceLike {
  readonly readyState: number;
  onmessage: ((ev: { data: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onopen?: ((ev: unknown) => void) | null;
  close(): void;
}
export type EventSourceConstructor = new (url: string) => EventSourceLike;

const ES_CLOSED = 2;

/** The SSE URL for a WebSocket URL: ws→http, wss→https, the path's last segment `/ws` → `/sse`. */
export function sseUrlFor(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  u.pathname = u.pathname.replace(/\/ws\/?$/, '') + '/sse';
  u.search = '';
  u.hash = '';
  return u.toString();
}

function percent(s: string): string {
  return Array.from(new TextEncoder().encode(s), (b) =>
    /[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0'),
  ).join('');
}

export class SseSocket implements WebSocketLike {
  readyState = 0;
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: any) => void) | null = null;
  onclose: ((ev: any) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;

  private es: EventSourceLike | null = null;
  private token: string | undefined;
  private channels: string[] = [];
  private positions = new Map<string, { epoch: string; offset: number }>();
  private asked = new Map<string, unknown>(); // channel -> the client's subscribe id
  private reopenTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly url: string,
    private readonly ES: EventSourceConstructor,
  ) {
    setTimeout(() => {
      if (this.readyState !== 0) return;
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }

  send(data: string): void {
    if (this.readyState !== 1) return;
    const msg = JSON.parse(data) as Record<string, any>;
    switch (msg.type) {
      case 'connect':
        this.token = typeof msg.token === 'string' ? msg.token : undefined;
        // No ping: the stream's heartbeats are comments EventSource hides, so no watchdog.
        this.reply({ type: 'connected', id: msg.id, client: '', version: '1' });
        return;
      case 'pong':
        return;
      case 'subscribe': {
        const channel = String(msg.channel);
        if (!this.channels.includes(channel)) this.channels.push(channel);
        if (msg.recover && typeof msg.recover.epoch === 'string')
          this.positions.set(channel, { epoch: msg.recover.epoch, offset: Number(msg.recover.offset) || 0 });
        else this.positions.delete(channel);
        this.asked.set(channel, msg.id);
        this.scheduleReopen();
        return;
      }
      case 'unsubscribe': {
        const channel = String(msg.channel);
        this.channels = this.channels.filter((c) => c !== channel);
        this.positions.delete(channel);
        this.asked.delete(channel);
        if (msg.id !== undefined) this.reply({ type: 'unsubscribed', id: msg.id, channel });
        this.scheduleReopen();
        return;
      }
      default:
        if (msg.id !== undefined)
          this.reply({
            type: 'error',
            id: msg.id,
            code: 'bad_request',
            message: `${msg.type} is not possible over the SSE fallback (a one-way stream): publish through the server's HTTP API (POST /api/publish) from a backend, or use a WebSocket`,
          });
    }
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    if (this.reopenTimer !== null) clearTimeout(this.reopenTimer);
    this.es?.close();
    this.es = null;
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }

  private fail(code: number, reason: string): void {
    this.close(code, reason);
  }

  // A reply made here, not by the server: after send() returned, as a
  // network reply would be (the client files a request after sending it).
  private reply(msg: unknown): void {
    queueMicrotask(() => this.pass(msg));
  }

  private pass(msg: unknown): void {
    if (this.readyState !== 1) return;
    this.onmessage?.({ data: JSON.stringify(msg) });
  }

  private scheduleReopen(): void {
    if (this.reopenTimer !== null) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      this.reopen();
    }, 0);
  }

  private reopen(): void {
    this.es?.close();
    this.es = null;
    if (this.readyState !== 1 || this.channels.length === 0) return;
    let query = this.channels.map((c) => 'channel=' + encodeURIComponent(c)).join('&');
    if (this.token !== undefined) query += '&token=' + encodeURIComponent(this.token);
    if (this.channels.some((c) => this.positions.has(c))) {
      const id = this.channels
        .map((c) => {
          const p = this.positions.get(c);
          return p ? `${percent(p.epoch)}:${p.offset}` : '';
        })
        .join(',');
      query += '&last_event_id=' + encodeURIComponent(id);
    }
    const es = new this.ES(`${this.url}?${query}`);
    this.es = es;
    let got = false;
    es.onmessage = (ev) => {
      if (this.es !== es) return;
      got = true;
      let msg: any;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onStreamMessage(msg);
    };
    es.onerror = () => {
      if (this.es !== es) return;
      // CONNECTING: EventSource reconnects by itself, with Last-Event-ID. CLOSED: refused.
      if (es.readyState === ES_CLOSED) this.fail(got ? 1006 : 4001, got ? 'SSE stream ended' : 'SSE stream refused');
    };
  }

  private onStreamMessage(msg: any): void {
    switch (msg.type) {
      case 'connected':
        return; // answered at connect
      case 'subscribed': {
        const channel = msg.channel as string;
        const previous = this.positions.get(channel);
        this.positions.set(channel, { epoch: msg.epoch, offset: msg.offset });
        if (this.asked.has(channel)) {
          const id = this.asked.get(channel);
          this.asked.delete(channel);
          this.pass({ ...msg, id });
          return;
        }
        if (msg.recovered === false && previous) {
          // A gap the client must see: it reconnects and subscribes with recover itself.
          this.positions.set(channel, previous);
          this.fail(1006, 'SSE stream could not recover');
          return;
        }
        for (const ev of msg.events ?? []) this.pass(ev);
        return;
      }
      case 'event': {
        const p = this.positions.get(msg.channel);
        if (p && typeof msg.offset === 'number') p.offset = msg.offset;
        this.pass(msg);
        return;
      }
      case 'error':
        if (this.asked.size > 0 && msg.id !== undefined) {
          // A refusal of one of the stream's subscribes: the client's request id.
          const channel = this.channels[Number(msg.id)];
          if (channel !== undefined && this.asked.has(channel)) {
            const id = this.asked.get(channel);
            this.asked.delete(channel);
            this.pass({ ...msg, id });
            return;
          }
        }
        this.pass({ ...msg, id: undefined });
        return;
      default:
        this.pass(msg);
    }
  }
}
