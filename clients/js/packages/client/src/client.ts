// The Herald client: one WebSocket to a Herald server (protocol v1,
// docs/protocol.md), connection states with events, automatic reconnect with
// backoff, a liveness watchdog fed by the server's pings, requests matched by
// id with timeouts, subscriptions that recover missed events exactly after
// every reconnect, and an optional bounded queue for offline publishes.
// Generic over a typed-events schema (schema.ts): channel, event names and
// payloads are checked at compile time; nothing of it exists at run time.

import { backoffDelay, reconnectOptions, type ReconnectOptions } from './backoff.js';
import { Emitter, reportListenerError } from './emitter.js';
import { HeraldError } from './errors.js';
import type {
  AnySchema,
  EventData,
  EventName,
  IfAllowed,
  PublishMap,
  ReceivedEvent,
  ReceivedMap,
  SchemaShape,
} from './schema.js';
import type {
  HeraldEvent,
  HistoryOptions,
  HistoryResult,
  PublishOptions,
  PublishResult,
  RecoveredInfo,
  RecoveryFailedInfo,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface SubscribedInfo {
  channel: string;
  epoch: string;
  /** the offset the subscription is at */
  offset: number;
}

export type TokenSource = string | (() => string | Promise<string>);

export interface HeraldOptions {
  /** WebSocket URL of the server, e.g. `wss://example.com/ws` */
  url: string;
  /** sent in `connect`; a function is called again before every (re)connect */
  token?: TokenSource;
  /** backoff between reconnect attempts; `false` disables reconnecting */
  reconnect?: Partial<ReconnectOptions> | false;
  /** how long a request waits for its reply (default 10000 ms) */
  requestTimeoutMs?: number;
  /** how long opening the socket plus `connect` may take (default 10000 ms) */
  connectTimeoutMs?: number;
  /** margin added to the server's ping interval before the connection is declared dead (default 10000 ms) */
  pingTimeoutMs?: number;
  /** queue publishes issued while not connected, up to `max` (default 0: reject at once) */
  offlineQueue?: { max: number };
  /** WebSocket implementation; default `globalThis.WebSocket` (pass the `ws` package on Node < 22) */
  WebSocket?: WebSocketConstructor;
  /** random source in [0, 1) for the backoff jitter (tests) */
  random?: () => number;
}

export interface SubscribeOptions<Ev = HeraldEvent, E extends string = string> {
  /** called for every event, in order, without duplicates */
  onEvent: (event: Ev) => void;
  /** deliver only these event names (the others still count for recovery) */
  events?: readonly E[];
  /** also deliver the last N stored events on the first subscribe */
  history?: number;
  /** called after a reconnect when the missed events were recovered (and delivered) */
  onRecovered?: (info: RecoveredInfo) => void;
  /** called after a reconnect when events may have been missed: refetch the state */
  onRecoveryFailed?: (info: RecoveryFailedInfo) => void;
  /** called when the server refuses the subscription (which then ends) */
  onError?: (error: HeraldError) => void;
}

export interface HeraldEvents {
  state: (state: ConnectionState, previous: ConnectionState) => void;
  connected: (info: { client: string; ping: number }) => void;
  disconnected: (info: { code: number; reason: string }) => void;
  error: (error: HeraldError) => void;
  /** the server confirmed a subscription on the current connection (after its history/recovered events) */
  subscribed: (info: SubscribedInfo) => void;
  recovered: (info: RecoveredInfo) => void;
  recoveryFailed: (info: RecoveryFailedInfo) => void;
}

type Timer = ReturnType<typeof setTimeout>;

interface Pending {
  resolve: (msg: any) => void;
  reject: (err: HeraldError) => void;
  timer: Timer;
}

interface Queued {
  msg: Record<string, unknown>;
  resolve: (msg: any) => void;
  reject: (err: HeraldError) => void;
}

const WS_OPEN = 1;
const CLOSE_UNAUTHORIZED = 4001;

/** One subscription to a channel; keeps the last seen `{epoch, offset}`. */
export class Subscription<Ev = HeraldEvent> {
  readonly channel: string;
  /** epoch of the channel, once subscribed */
  epoch: string | null = null;
  /** offset of the last event delivered (or the channel's offset when subscribed) */
  offset = 0;
  /** events dropped because their offset was already delivered */
  duplicatesDropped = 0;
  /** resolves once the first `subscribed` reply is processed; rejects if the server refuses */
  readonly ready: Promise<void>;
  /** @internal */ active = true;
  /** @internal waiting for the `subscribed` reply */ subscribing = false;
  /** @internal */ readonly options: SubscribeOptions<Ev>;
  /** @internal null: every event */ readonly only: ReadonlySet<string> | null;
  private readonly client: Herald<any>;
  private settleReady: { resolve: () => void; reject: (e: HeraldError) => void } | null = null;

  /** @internal */
  constructor(client: Herald<any>, channel: string, options: SubscribeOptions<Ev>) {
    this.client = client;
    this.channel = channel;
    this.options = options;
    this.only = options.events ? new Set(options.events) : null;
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    this.ready.catch(() => {}); // awaiting it is optional
  }

  /** Stops the subscription: no event is delivered after this call. */
  unsubscribe(): void {
    this.client._unsubscribe(this);
  }

  /** @internal */
  _resolveReady(): void {
    this.settleReady?.resolve();
    this.settleReady = null;
  }

  /** @internal */
  _rejectReady(e: HeraldError): void {
    this.settleReady?.reject(e);
    this.settleReady = null;
  }
}

/**
 * A Herald connection. `S` is the typed-events schema (`HeraldSchema` from
 * `herald typegen`); the default accepts any channel, event and payload.
 */
export class Herald<S extends SchemaShape = AnySchema> extends Emitter<HeraldEvents> {
  private _state: ConnectionState = 'disconnected';
  private readonly url: string;
  private readonly token: TokenSource | undefined;
  private readonly reconnect: ReconnectOptions | null;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly pingTimeoutMs: number;
  private readonly queueMax: number;
  private readonly WS: WebSocketConstructor;
  private readonly random: () => number;

  private ws: WebSocketLike | null = null;
  private generation = 0; // bumped by close(): stale async steps check it
  private nextId = 1;
  private connectId = 0;
  private attempt = 0;
  private pingMs = 0;
  private reconnectTimer: Timer | null = null;
  private connectTimer: Timer | null = null;
  private watchdog: Timer | null = null;
  private readonly pending = new Map<number, Pending>();
  private readonly channels = new Map<string, Subscription<any>>();
  private queue: Queued[] = [];

  /** the server's id of the current connection, while connected */
  clientId: string | null = null;

  constructor(options: HeraldOptions) {
    super();
    if (!options || typeof options.url !== 'string') throw new TypeError('Herald: options.url is required');
    this.url = options.url;
    this.token = options.token;
    this.reconnect = options.reconnect === false ? null : reconnectOptions(options.reconnect);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 10_000;
    this.queueMax = Math.max(0, options.offlineQueue?.max ?? 0);
    this.random = options.random ?? Math.random;
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) {
      throw new TypeError('Herald: no global WebSocket; pass one, e.g. new Herald({url, WebSocket: (await import("ws")).default})');
    }
    this.WS = WS;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Opens the connection (and keeps it open until close()). Idempotent. */
  connect(): void {
    if (this._state === 'connecting' || this._state === 'connected') return;
    if (this.reconnectTimer !== null) return; // a retry is already scheduled
    this.attempt = 0;
    void this.open();
  }

  /** Closes the connection for good: no reconnect; pending requests and queued publishes reject with `closed`. */
  close(): void {
    this.generation++;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closed
      }
    }
    this.clientId = null;
    this.failPending(new HeraldError('closed', 'the client was closed'));
    this.failQueue(new HeraldError('closed', 'the client was closed'));
    this.setState('closed');
  }

  /** Subscribes to a channel; see SubscribeOptions. One Subscription per channel and client. */
  subscribe<C extends string, E extends EventName<ReceivedMap<S, C>> = EventName<ReceivedMap<S, C>>>(
    channel: C,
    options: IfAllowed<ReceivedMap<S, C>, SubscribeOptions<ReceivedEvent<S, C, E>, E>>,
  ): Subscription<ReceivedEvent<S, C, E>> {
    if (typeof options?.onEvent !== 'function') throw new TypeError('Herald.subscribe: options.onEvent is required');
    if (this.channels.has(channel)) {
      throw new HeraldError('already_subscribed', `already subscribed to ${channel} on this client`);
    }
    const sub = new Subscription<ReceivedEvent<S, C, E>>(this, channel, options as SubscribeOptions<ReceivedEvent<S, C, E>>);
    this.channels.set(channel, sub);
    if (this._state === 'connected') this.sendSubscribe(sub);
    return sub;
  }

  /** Publishes an event; resolves with its offset (none for ephemeral events). */
  publish<C extends string, E extends EventName<PublishMap<S, C>>>(
    channel: C,
    /** `never` (so nothing type-checks) on a channel whose namespace allows no event */
    event: E,
    data: EventData<PublishMap<S, C>, E>,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    const msg: Record<string, unknown> = { type: 'publish', channel, event, data: data === undefined ? null : data };
    if (options.ephemeral) msg.ephemeral = true;
    const toResult = (reply: { offset?: number }): PublishResult =>
      typeof reply.offset === 'number' ? { offset: reply.offset } : {};
    if (this._state === 'connected') return this.request(msg).then(toResult);
    if (this._state === 'closed') return Promise.reject(new HeraldError('closed', 'the client was closed'));
    if (this.queueMax === 0) return Promise.reject(new HeraldError('disconnected', 'not connected'));
    if (this.queue.length >= this.queueMax) {
      return Promise.reject(new HeraldError('queue_full', `offline queue full (${this.queueMax} publishes)`));
    }
    return new Promise<any>((resolve, reject) => {
      this.queue.push({ msg, resolve, reject });
    }).then(toResult);
  }

  /** Reads stored events of a channel (protocol section 6, `history`). */
  history<C extends string>(
    channel: C,
    options: HistoryOptions = {},
  ): Promise<HistoryResult<ReceivedEvent<S, C>>> {
    const msg: Record<string, unknown> = { type: 'history', channel };
    for (const k of ['limit', 'before', 'after'] as const) if (options[k] !== undefined) msg[k] = options[k];
    return this.requestNow(msg).then((r) => ({ channel: r.channel, epoch: r.epoch, offset: r.offset, events: r.events }));
  }

  /** Who is on a channel. The server does not implement presence yet: rejects with `forbidden`. */
  presence(channel: string): Promise<unknown> {
    return this.requestNow({ type: 'presence', channel });
  }

  /** Number of publishes waiting in the offline queue. */
  get queuedPublishes(): number {
    return this.queue.length;
  }

  // ---------------------------------------------------------------------
  // Connection

  private async open(): Promise<void> {
    this.reconnectTimer = null;
    const gen = this.generation;
    this.setState('connecting');
    let token: string | undefined;
    try {
      token = typeof this.token === 'function' ? await this.token() : this.token;
    } catch (e) {
      if (gen !== this.generation) return;
      this.emitError(new HeraldError('token_failed', `token function failed: ${errorMessage(e)}`, { cause: e }));
      this.afterDrop(1006, 'token function failed');
      return;
    }
    if (gen !== this.generation) return; // close() meanwhile
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url);
    } catch (e) {
      this.emitError(new HeraldError('socket_failed', `cannot open a WebSocket to ${this.url}: ${errorMessage(e)}`, { cause: e }));
      this.afterDrop(1006, 'socket failed');
      return;
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => this.drop(ws, 'connect timeout'), this.connectTimeoutMs);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.connectId = this.nextId++;
      const msg: Record<string, unknown> = { type: 'connect', id: this.connectId };
      if (token !== undefined) msg.token = token;
      this.send(msg);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.ws !== ws) return;
      this.onMessage(ws, ev.data);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.ws !== ws) return;
      this.ws = null;
      detach(ws);
      this.afterDrop(typeof ev?.code === 'number' ? ev.code : 1006, ev?.reason ?? '');
    };
    ws.onerror = () => {
      // a close event follows
    };
  }

  /** Gives up on a socket that is dead or stuck (no close event needed). */
  private drop(ws: WebSocketLike, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    detach(ws);
    try {
      // `ws` (Node) has terminate(): no closing handshake to wait for on a dead socket.
      const terminate = (ws as { terminate?: () => void }).terminate;
      if (typeof terminate === 'function' && ws.readyState === WS_OPEN && reason === 'ping timeout') terminate.call(ws);
      else ws.close(4000, reason);
    } catch {
      // ignore
    }
    this.afterDrop(1006, reason);
  }

  private afterDrop(code: number, reason: string): void {
    this.clearTimers();
    this.clientId = null;
    this.failPending(new HeraldError('disconnected', `connection lost (${code}${reason ? ` ${reason}` : ''})`));
    this.emit('disconnected', { code, reason });
    if (code === CLOSE_UNAUTHORIZED) {
      const err = new HeraldError('unauthorized', `the server rejected the credentials (close ${code}${reason ? `: ${reason}` : ''})`);
      this.failQueue(err);
      this.setState('closed');
      this.emitError(err);
      return;
    }
    this.setState('disconnected');
    if (this.reconnect === null) return;
    const delay = backoffDelay(this.attempt++, this.reconnect, this.random);
    const gen = this.generation;
    this.reconnectTimer = setTimeout(() => {
      if (gen === this.generation) void this.open();
    }, delay);
  }

  private onConnected(msg: { client?: string; ping?: number }): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.attempt = 0;
    this.clientId = typeof msg.client === 'string' ? msg.client : null;
    this.pingMs = typeof msg.ping === 'number' && msg.ping > 0 ? msg.ping * 1000 : 0;
    this.armWatchdog();
    this.setState('connected');
    this.emit('connected', { client: this.clientId ?? '', ping: msg.ping ?? 0 });
    if (this._state !== 'connected') return; // a listener closed us
    for (const sub of this.channels.values()) this.sendSubscribe(sub);
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) this.request(q.msg).then(q.resolve, q.reject);
  }

  private armWatchdog(): void {
    if (this.watchdog !== null) clearTimeout(this.watchdog);
    this.watchdog = null;
    const ws = this.ws;
    if (this.pingMs <= 0 || !ws) return;
    this.watchdog = setTimeout(() => this.drop(ws, 'ping timeout'), this.pingMs + this.pingTimeoutMs);
  }

  private onMessage(ws: WebSocketLike, raw: unknown): void {
    if (this._state === 'connected') this.armWatchdog();
    let text: string;
    if (typeof raw === 'string') text = raw;
    else if (raw instanceof ArrayBuffer) text = new TextDecoder().decode(raw);
    else if (ArrayBuffer.isView(raw)) text = new TextDecoder().decode(raw as Uint8Array);
    else return;
    let msg: any;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'ping':
        this.send({ type: 'pong' });
        return;
      case 'event': {
        const sub = this.channels.get(msg.channel);
        if (sub && sub.active && !sub.subscribing && sub.epoch !== null) this.deliver(sub, msg);
        return;
      }
    }
    if (msg.id !== undefined && msg.id === this.connectId && this._state === 'connecting') {
      if (msg.type === 'connected') {
        this.onConnected(msg);
      } else {
        this.emitError(HeraldError.fromReply(msg));
        this.drop(ws, 'connect failed');
      }
      return;
    }
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (!p) return; // timed out already
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.type === 'error') p.reject(HeraldError.fromReply(msg));
      else p.resolve(msg);
      return;
    }
    if (msg.type === 'error') this.emitError(HeraldError.fromReply(msg));
  }

  // ---------------------------------------------------------------------
  // Requests

  private send(msg: unknown): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  /** Sends a request now if connected, else rejects with `disconnected` (or `closed`). */
  private requestNow(msg: Record<string, unknown>): Promise<any> {
    if (this._state === 'connected') return this.request(msg);
    if (this._state === 'closed') return Promise.reject(new HeraldError('closed', 'the client was closed'));
    return Promise.reject(new HeraldError('disconnected', 'not connected'));
  }

  private request(msg: Record<string, unknown>): Promise<any> {
    return new Promise((resolve, reject) => {
      this.call(msg, (err, reply) => (err ? reject(err) : resolve(reply)));
    });
  }

  /**
   * Sends a request; `onReply` runs synchronously when the reply arrives, so
   * that a reply is processed before any message that follows it on the wire
   * (a promise would run it only after the rest of the socket's read).
   */
  private call(msg: Record<string, unknown>, onReply: (err: HeraldError | null, reply?: any) => void): void {
    const id = this.nextId++;
    if (!this.send({ ...msg, id })) {
      onReply(new HeraldError('disconnected', 'not connected'));
      return;
    }
    const timer = setTimeout(() => {
      this.pending.delete(id);
      onReply(new HeraldError('timeout', `no reply to ${String(msg.type)} within ${this.requestTimeoutMs} ms`));
    }, this.requestTimeoutMs);
    this.pending.set(id, { resolve: (reply) => onReply(null, reply), reject: (err) => onReply(err), timer });
  }

  private failPending(err: HeraldError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  private failQueue(err: HeraldError): void {
    const all = this.queue;
    this.queue = [];
    for (const q of all) q.reject(err);
  }

  // ---------------------------------------------------------------------
  // Subscriptions

  private sendSubscribe(sub: Subscription<any>): void {
    const msg: Record<string, unknown> = { type: 'subscribe', channel: sub.channel };
    const recovering = sub.epoch !== null;
    if (recovering) msg.recover = { epoch: sub.epoch, offset: sub.offset };
    else if (sub.options.history !== undefined && sub.options.history > 0) msg.history = sub.options.history;
    const ws = this.ws;
    sub.subscribing = true;
    this.call(msg, (err, reply) => {
      sub.subscribing = false;
      if (!sub.active || this.channels.get(sub.channel) !== sub) return;
      if (!err) {
        this.onSubscribed(sub, reply, recovering);
        return;
      }
      if (err.code === 'disconnected' || err.code === 'closed') return; // resubscribed on reconnect
      if (err.code === 'timeout') {
        // The server may still subscribe us later: start over on a fresh connection.
        if (ws) this.drop(ws, 'subscribe timeout');
        return;
      }
      sub.active = false;
      this.channels.delete(sub.channel);
      sub._rejectReady(err);
      this.callback(() => sub.options.onError?.(err));
      this.emitError(err);
    });
  }

  private onSubscribed(sub: Subscription<any>, reply: any, recovering: boolean): void {
    const events: HeraldEvent[] = Array.isArray(reply.events) ? reply.events : [];
    if (recovering && reply.recovered === false) {
      const previous = { epoch: sub.epoch as string, offset: sub.offset };
      sub.epoch = reply.epoch;
      sub.offset = reply.offset;
      const info: RecoveryFailedInfo = { channel: sub.channel, epoch: reply.epoch, offset: reply.offset, previous };
      this.callback(() => sub.options.onRecoveryFailed?.(info));
      this.emit('recoveryFailed', info);
      sub._resolveReady();
      if (sub.active) this.emit('subscribed', { channel: sub.channel, epoch: reply.epoch, offset: sub.offset });
      return;
    }
    if (!recovering) {
      sub.epoch = reply.epoch;
      sub.offset = 0;
    }
    for (const ev of events) {
      if (!sub.active) return;
      this.deliver(sub, ev);
    }
    if (typeof reply.offset === 'number' && reply.offset > sub.offset) sub.offset = reply.offset;
    sub._resolveReady();
    if (recovering) {
      const info: RecoveredInfo = { channel: sub.channel, epoch: reply.epoch, offset: sub.offset, missed: events.length };
      this.callback(() => sub.options.onRecovered?.(info));
      this.emit('recovered', info);
    }
    if (sub.active) this.emit('subscribed', { channel: sub.channel, epoch: reply.epoch, offset: sub.offset });
  }

  /** Delivers one event: in order, never an offset already delivered in this epoch. */
  private deliver(sub: Subscription<any>, ev: HeraldEvent): void {
    if (typeof ev.offset === 'number') {
      if (ev.offset <= sub.offset) {
        sub.duplicatesDropped++;
        return;
      }
      sub.offset = ev.offset;
    }
    if (sub.only !== null && !sub.only.has(ev.event)) return;
    this.callback(() => sub.options.onEvent(ev));
  }

  /** @internal */
  _unsubscribe(sub: Subscription<any>): void {
    if (!sub.active) return;
    sub.active = false;
    if (this.channels.get(sub.channel) === sub) this.channels.delete(sub.channel);
    sub._rejectReady(new HeraldError('closed', 'unsubscribed'));
    if (this._state === 'connected') this.request({ type: 'unsubscribe', channel: sub.channel }).catch(() => {});
  }

  // ---------------------------------------------------------------------

  private callback(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      const err = new HeraldError('listener_failed', `an application callback threw: ${errorMessage(e)}`, { cause: e });
      if (this.emit('error', err) === 0) reportListenerError(e);
    }
  }

  private emitError(err: HeraldError): void {
    this.emit('error', err);
  }

  private setState(next: ConnectionState): void {
    const prev = this._state;
    if (prev === next) return;
    this._state = next;
    this.emit('state', next, prev);
  }

  private clearTimers(): void {
    for (const t of [this.reconnectTimer, this.connectTimer, this.watchdog]) if (t !== null) clearTimeout(t);
    this.reconnectTimer = this.connectTimer = this.watchdog = null;
  }
}

function detach(ws: WebSocketLike): void {
  ws.onopen = ws.onmessage = ws.onclose = null;
  ws.onerror = () => {}; // late errors of a dropped socket must not crash Node
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
