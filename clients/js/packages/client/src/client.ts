// The Herald client: one WebSocket to a Herald server (protocol v1,
// docs/protocol.md), connection states with events, automatic reconnect with
// backoff, a liveness watchdog fed by the server's pings, requests matched by
// id with timeouts, subscriptions that recover missed events exactly after
// every reconnect, and publishes that are not lost nor doubled by a drop:
// each carries an idempotency key, is queued (bounded) while not connected,
// and is sent again with the same key after a reconnect until the server
// acknowledges or refuses it, or its deadline passes.
// Authentication: a connection token sent in `connect` (a function is called
// again for every connect and for `refresh` before the token expires), one
// fresh token and retry after 4001, then a terminal `closed` state with
// `closeError`; subscription tokens (`getToken`) for `subscribe` and
// `sub_refresh`; server-side subscriptions (the token's `channels` claim)
// attached without `subscribe` and caught up with `history` after a
// reconnect.
// Presence (protocol section 13): `presence`, `presence_stats` and `destroy`
// requests, `join` / `leave` messages emitted by their Subscription, and the
// server ending a subscription (`kicked`, `destroyed`, `expired`) without
// subscribing again.
// Generic over a typed-events schema (schema.ts): channel, event names and
// payloads are checked at compile time; nothing of it exists at run time.

import { SseSocket, sseUrlFor, type EventSourceConstructor } from './sse-socket.js';
import { backoffDelay, reconnectOptions, type ReconnectOptions } from './backoff.js';
import { Emitter, reportListenerError } from './emitter.js';
import { HeraldError } from './errors.js';
import { refreshDelay, tokenChannels, tokenExpiry } from './token.js';
import type {
  AnySchema,
  EventData,
  EventName,
  IfAllowed,
  PublishMap,
  ReceivedEvent,
  ReceivedMap,
  RpcArgs,
  RpcMethod,
  RpcRequest,
  RpcResponse,
  SchemaShape,
} from './schema.js';
import type {
  ChannelPosition,
  DestroyOptions,
  DestroyResult,
  HeraldEvent,
  HistoryOptions,
  HistoryResult,
  JoinInfo,
  LeaveInfo,
  PresenceMember,
  PresenceResult,
  PresenceStats,
  PublishOptions,
  PublishResult,
  RecoveredInfo,
  RpcOptions,
  RecoveryFailedInfo,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

/**
 * `closed` is final until `connect()` is called again: after `close()`, or
 * when the client stopped by itself (`closeError` says why: credentials
 * refused, token expired, disconnected by the server).
 */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface SubscribedInfo {
  channel: string;
  epoch: string;
  /** the offset the subscription is at */
  offset: number;
}

/**
 * The connection token (a JWT from the app's backend). A string is used as is
 * (no refresh; refused or expired means the client stops). A function is
 * called before every (re)connect and again to `refresh` the token before
 * it expires.
 */
export type TokenSource = string | (() => string | Promise<string>);

export interface HeraldOptions {
  /** WebSocket URL of the server, e.g. `wss://example.com/ws` (never put the token in it) */
  url: string;
  /** sent in `connect`; a function is called again before every (re)connect and before the token expires */
  token?: TokenSource;
  /**
   * `connect`'s `data` (any JSON), for the server's connect hook
   * (docs/backend-hooks.md); a function is called again before every
   * (re)connect. The hook's answer for the client is `connectionData`.
   */
  data?: unknown;
  /** backoff between reconnect attempts; `false` disables reconnecting */
  reconnect?: Partial<ReconnectOptions> | false;
  /** how long a request waits for its reply (default 10000 ms) */
  requestTimeoutMs?: number;
  /** how long opening the socket plus `connect` may take (default 10000 ms) */
  connectTimeoutMs?: number;
  /** margin added to the server's ping interval before the connection is declared dead (default 10000 ms) */
  pingTimeoutMs?: number;
  /**
   * publishes issued while not connected wait for the connection, up to
   * `max` publishes and `maxBytes` bytes of JSON (default `{max: 1000,
   * maxBytes: 1048576}`); over either bound a publish rejects with
   * `queue_full`. `false` (or `max: 0`): reject at once with `disconnected`.
   */
  offlineQueue?: { max?: number; maxBytes?: number } | false;
  /**
   * how long a publish may wait for its ack, from the publish call, across
   * reconnects (default 30000 ms); then it rejects with `timeout`: its
   * outcome is unknown
   */
  publishTimeoutMs?: number;
  /** WebSocket implementation; default `globalThis.WebSocket` (pass the `ws` package on Node < 22) */
  WebSocket?: WebSocketConstructor;
  /**
   * transports to use, in order of preference (default `['websocket']`).
   * `['websocket', 'sse']`: when a WebSocket cannot be opened (it closes
   * before it opened: a proxy that refuses upgrades), reconnect over the
   * server's SSE fallback (GET /sse, an EventSource) and stay on it.
   * `['sse']`: SSE only. Over SSE subscriptions, events and recovery work as
   * over a WebSocket; publish, history, presence and rpc reject with
   * `bad_request` (the stream is one-way: publish through the HTTP API).
   */
  transports?: ReadonlyArray<'websocket' | 'sse'>;
  /** EventSource implementation for SSE; default `globalThis.EventSource` */
  EventSource?: EventSourceConstructor;
  /** URL of the SSE endpoint; default from `url` (ws→http, wss→https, a trailing `/ws` → `/sse`) */
  sseUrl?: string;
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
  /**
   * called when the subscription ends without `unsubscribe()`: the server
   * refused it (e.g. `forbidden`, `channel_full`), a subscription token
   * could not be fetched (`token_failed`), or the server ended it
   * (`kicked`, `destroyed`, `expired`, `token_expired` without `getToken`)
   */
  onError?: (error: HeraldError) => void;
  /**
   * returns a subscription token for the channel (a JWT from the app's
   * backend); called for every `subscribe` (also after each reconnect), for
   * `sub_refresh` before the token's `exp`, and to subscribe again when the
   * server ended the subscription because its token lapsed
   */
  getToken?: (channel: string) => string | Promise<string>;
}

export interface ConnectedInfo {
  client: string;
  ping: number;
  /** the token's `sub`, when the connection is authenticated */
  user?: string;
  /** the token's `exp` (seconds since the Unix epoch), when it has one */
  expires?: number;
  /** `connected.data`: what the server's connect hook returned for the client, when it did */
  data?: unknown;
}

export interface UnsubscribedInfo {
  channel: string;
  /**
   * `token_expired` (subscribed again when the subscription has `getToken`),
   * `kicked`, `destroyed`, `expired`, or another server reason
   */
  reason: string;
}

/** Events of a Subscription (`sub.on(name, fn)`), from its channel's `join` / `leave` messages. */
export interface SubscriptionEvents {
  /** a member arrived (the subscriber's own connection too, right after subscribing) */
  join: (member: JoinInfo) => void;
  /** a member went away */
  leave: (member: LeaveInfo) => void;
}

export interface HeraldEvents {
  state: (state: ConnectionState, previous: ConnectionState) => void;
  connected: (info: ConnectedInfo) => void;
  disconnected: (info: { code: number; reason: string }) => void;
  /** the connection token was refreshed (`refresh`); `expires` is its new expiry */
  refreshed: (info: { expires?: number }) => void;
  error: (error: HeraldError) => void;
  /** the server ended a subscription on its own (`unsubscribed` without id) */
  unsubscribed: (info: UnsubscribedInfo) => void;
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

/** A keyed publish until its ack, its refusal or its deadline: queued, or in flight with request `id`. */
interface Outgoing {
  seq: number;
  channel: string;
  key: string;
  /** the request without its id, serialized once: every attempt sends the same bytes */
  json: string;
  bytes: number;
  /** the request id on the current connection; null while queued */
  id: number | null;
  deadline: Timer | null;
  /** refusals with `unavailable` so far, and the timer of the next attempt */
  attempts: number;
  retry: Timer | null;
  resolve: (r: PublishResult) => void;
  reject: (err: HeraldError) => void;
}

/** Default bounds of the offline queue. */
export const DEFAULT_OFFLINE_QUEUE = { max: 1000, maxBytes: 1 << 20 };
export const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;

/** Backoff of a publish the server refused with `unavailable` (nothing stored): 100 ms doubling to 5 s, jittered. */
const UNAVAILABLE_RETRY_MIN_MS = 100;
const UNAVAILABLE_RETRY_MAX_MS = 5_000;

const WS_OPEN = 1;
/** The message of the `disconnected` error of a request that could not be sent at all. */
const NOT_SENT = 'not connected';
const CLOSE_UNAUTHORIZED = 4001;
const CLOSE_DISCONNECTED = 4003;
const CLOSE_RATE_LIMITED = 4029;
/**
 * Codes an app backend's hook may close with (4000-4999, docs/protocol.md):
 * 4500 and above mean "do not come back" (a ban), like 4003; below, the
 * client reconnects with backoff (e.g. "reconnect later").
 */
const CLOSE_TERMINAL_FROM = 4500;
const CLOSE_TERMINAL_TO = 4999;
const isTerminalClose = (code: number) =>
  code === CLOSE_DISCONNECTED || (code >= CLOSE_TERMINAL_FROM && code <= CLOSE_TERMINAL_TO);
/** `limit` of the history pages fetched to catch up a server-side subscription (the server caps it) */
const CATCH_UP_PAGE = 1000;
/** the least delay before retrying a failed token refresh */
const REFRESH_RETRY_MS = 1000;

/** A subscription being brought up to date with `history`: the live events held meanwhile. */
type CatchUp = { buffer: HeraldEvent[] };

/**
 * One subscription to a channel; keeps the last seen `{epoch, offset}`.
 * `sub.on('join' | 'leave', fn)` tells who comes and goes (namespaces with
 * `join_leave = true`).
 */
export class Subscription<Ev = HeraldEvent> extends Emitter<SubscriptionEvents> {
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
  /** @internal waiting for the `subscribed` reply (or a server-side one) */ subscribing = false;
  /** @internal bumped whenever an async step of this subscription must be forgotten */ run = 0;
  /** @internal the subscription token in force on this connection */ token: string | null = null;
  /** @internal sub_refresh, or waiting for a server-side `subscribed` */ timer: ReturnType<typeof setTimeout> | null = null;
  /** @internal fetching history before live events (server-side subscriptions) */ catchUp: CatchUp | null = null;
  /** @internal */ readonly options: SubscribeOptions<Ev>;
  /** @internal null: every event */ readonly only: ReadonlySet<string> | null;
  private readonly client: Herald<any>;
  private settleReady: { resolve: () => void; reject: (e: HeraldError) => void } | null = null;

  /** @internal */
  constructor(client: Herald<any>, channel: string, options: SubscribeOptions<Ev>) {
    super();
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

  /** @internal a `join` / `leave` of the channel */
  _emitMember<K extends keyof SubscriptionEvents>(name: K, info: Parameters<SubscriptionEvents[K]>[0]): void {
    this.emit(name, ...([info] as Parameters<SubscriptionEvents[K]>));
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
  private readonly connectData: unknown;
  private readonly reconnect: ReconnectOptions | null;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly pingTimeoutMs: number;
  private readonly queueMax: number;
  private readonly queueMaxBytes: number;
  private readonly publishTimeoutMs: number;
  private WS: WebSocketConstructor | null;
  private readonly random: () => number;
  private readonly transports: ReadonlyArray<'websocket' | 'sse'>;
  private readonly ES: EventSourceConstructor | null;
  private readonly sseUrl: string;
  private onSse = false; // the WebSocket could not be opened: SSE from now on

  private ws: WebSocketLike | null = null;
  private generation = 0; // bumped by close(): stale async steps check it
  private nextId = 1;
  private connectId = 0;
  private attempt = 0;
  private pingMs = 0;
  private reconnectTimer: Timer | null = null;
  private connectTimer: Timer | null = null;
  private watchdog: Timer | null = null;
  private refreshTimer: Timer | null = null;
  private readonly pending = new Map<number, Pending>();
  private readonly channels = new Map<string, Subscription<any>>();
  /** keyed publishes waiting for a connection, oldest first */
  private queue: Outgoing[] = [];
  private queueBytes = 0;
  /** keyed publishes sent on the current connection, by request id */
  private readonly inflight = new Map<number, Outgoing>();
  /** publishes refused with `unavailable`, waiting for their next attempt */
  private readonly retrying = new Set<Outgoing>();
  private publishSeq = 0;
  /** the connection token sent on the current connection */
  private tokenInUse: string | undefined = undefined;
  /** a fresh token was fetched after a 4001 and not yet accepted */
  private authRetried = false;
  /** the `unauthorized` / `token_expired` error that precedes a 4001 close */
  private authError: HeraldError | null = null;
  /** consecutive 4029 closes, and the last `retry_after_ms` the server asked for */
  private rateLimitCloses = 0;
  private retryAfterMs = 0;
  /** channels the token's `channels` claim makes the server subscribe at connect */
  private expectedServerChannels = new Set<string>();
  /** server-side subscriptions of the current connection: their epoch and the last offset seen */
  private readonly serverChannels = new Map<string, { epoch: string; offset: number }>();

  /** the server's id of the current connection, while connected */
  clientId: string | null = null;
  /** the authenticated user (the connection token's `sub`), while connected */
  user: string | null = null;
  /** when the connection's token expires (seconds since the Unix epoch), while connected */
  expires: number | null = null;
  /**
   * `connected.data` of the current connection: what the server's connect
   * hook returned for the client (`undefined` when it returned none, and
   * while not connected)
   */
  connectionData: unknown = undefined;
  /**
   * why the client stopped by itself (state `closed`, no reconnect):
   * `unauthorized` or `token_expired` (credentials refused twice, or once
   * with a string token), `disconnected_by_server` (close 4003, or 4500-4999
   * from the app backend's hook). null while
   * running, and after `close()`.
   */
  closeError: HeraldError | null = null;

  constructor(options: HeraldOptions) {
    super();
    if (!options || typeof options.url !== 'string') throw new TypeError('Herald: options.url is required');
    this.url = options.url;
    this.token = options.token;
    this.connectData = options.data;
    this.reconnect = options.reconnect === false ? null : reconnectOptions(options.reconnect);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 10_000;
    const q = options.offlineQueue === false ? { max: 0, maxBytes: 0 } : { ...DEFAULT_OFFLINE_QUEUE, ...options.offlineQueue };
    this.queueMax = Math.max(0, q.max);
    this.queueMaxBytes = Math.max(0, q.maxBytes);
    this.publishTimeoutMs = options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    this.random = options.random ?? Math.random;
    // Looked up when connecting, not here: a client made during server-side
    // rendering (Node 20 has no global WebSocket) never connects there.
    this.WS = options.WebSocket ?? null;
    this.transports = options.transports?.length ? options.transports : ['websocket'];
    this.ES = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource ?? null;
    this.sseUrl = options.sseUrl ?? (this.transports.includes('sse') ? sseUrlFor(options.url) : '');
    this.onSse = this.transports[0] === 'sse';
    if (this.transports.includes('sse') && !this.ES) throw new TypeError('Herald: transports include sse but there is no EventSource; pass one');
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Opens the connection (and keeps it open until close()). Idempotent. */
  connect(): void {
    if (this._state === 'connecting' || this._state === 'connected') return;
    if (!this.WS) this.WS = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? null;
    if (!this.WS && !this.onSse) {
      throw new TypeError('Herald: no global WebSocket; pass one, e.g. new Herald({url, WebSocket: (await import("ws")).default})');
    }
    if (this.reconnectTimer !== null) return; // a retry is already scheduled
    this.attempt = 0;
    this.authRetried = false;
    this.rateLimitCloses = 0;
    this.closeError = null;
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
    this.forgetConnection();
    this.closeError = null;
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
    if (this._state === 'connected') this.startSubscription(sub);
    return sub;
  }

  /**
   * Publishes an event; resolves with `{offset, replayed}` once the server
   * stored it (`{}` for ephemeral events). Every stored publish carries an
   * idempotency key (`options.idempotencyKey`, or a random one): queued
   * while not connected, and sent again with the same key after a drop,
   * until the server acknowledges it (the server stores it at most once),
   * refuses it (rejects with its error; `unavailable`, which stores
   * nothing, is retried after a backoff instead, so a later publish may be
   * stored before it), or `publishTimeoutMs` passes
   * (rejects with `timeout`: the outcome is unknown). Ephemeral publishes
   * are sent only while connected, once.
   */
  publish<C extends string, E extends EventName<PublishMap<S, C>>>(
    channel: C,
    /** `never` (so nothing type-checks) on a channel whose namespace allows no event */
    event: E,
    data: EventData<PublishMap<S, C>, E>,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    const msg: Record<string, unknown> = { type: 'publish', channel, event, data: data === undefined ? null : data };
    if (this._state === 'closed') return Promise.reject(new HeraldError('closed', 'the client was closed'));
    if (options.ephemeral) {
      if (options.idempotencyKey !== undefined) {
        return Promise.reject(new HeraldError('bad_request', 'idempotency_key: not allowed on ephemeral events'));
      }
      msg.ephemeral = true;
      if (this._state !== 'connected') return Promise.reject(new HeraldError('disconnected', 'not connected (ephemeral publishes are not queued)'));
      return this.request(msg).then(() => ({}));
    }
    const key = options.idempotencyKey ?? newIdempotencyKey();
    const bad = idempotencyKeyError(key);
    if (bad) return Promise.reject(new HeraldError('bad_request', `idempotency_key: ${bad}`));
    msg.idempotency_key = key;
    let json: string;
    try {
      json = JSON.stringify(msg);
    } catch (e) {
      return Promise.reject(new HeraldError('bad_request', `data cannot be sent as JSON: ${errorMessage(e)}`, { cause: e }));
    }
    const bytes = utf8Length(json);
    if (this._state !== 'connected') {
      if (this.queueMax === 0) return Promise.reject(new HeraldError('disconnected', 'not connected (the offline queue is off)'));
      if (this.queue.length + 1 > this.queueMax || this.queueBytes + bytes > this.queueMaxBytes) {
        return Promise.reject(
          new HeraldError(
            'queue_full',
            `offline queue full: ${this.queue.length} publishes, ${this.queueBytes} bytes waiting (offlineQueue: max ${this.queueMax}, maxBytes ${this.queueMaxBytes}); this one (${bytes} bytes) was not queued`,
          ),
        );
      }
    }
    return new Promise<PublishResult>((resolve, reject) => {
      const out: Outgoing = {
        seq: ++this.publishSeq, channel, key, json, bytes, id: null, deadline: null, attempts: 0, retry: null, resolve, reject,
      };
      if (this.publishTimeoutMs > 0 && Number.isFinite(this.publishTimeoutMs)) {
        out.deadline = setTimeout(() => this.publishExpired(out), this.publishTimeoutMs);
      }
      if (this._state === 'connected') this.sendPublish(out);
      else this.enqueue(out);
    });
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

  /**
   * Who is subscribed to a channel now (protocol section 6, `presence`):
   * one member per connection. Being subscribed is not required. Rejects
   * with `forbidden` when the namespace has no `presence = true`.
   */
  presence<C extends string>(channel: C): Promise<PresenceResult> {
    return this.requestNow({ type: 'presence', channel }).then((r) => ({
      members: Array.isArray(r.members) ? r.members.map(presenceMember) : [],
      complete: r.complete === true,
    }));
  }

  /** How many connections (and distinct users) are subscribed to a channel (`presence_stats`). */
  presenceStats<C extends string>(channel: C): Promise<PresenceStats> {
    return this.requestNow({ type: 'presence_stats', channel }).then((r) => {
      const stats: PresenceStats = { clients: typeof r.clients === 'number' ? r.clients : 0 };
      if (typeof r.users === 'number') stats.users = r.users;
      return stats;
    });
  }

  /**
   * Destroys a channel (`destroy`, where the namespace's `destroy_access`
   * allows it): the final event (if given) reaches every subscriber, then
   * their subscriptions end with reason `destroyed`; the history is deleted
   * and the channel starts again in a new epoch. Resolves with that epoch.
   */
  destroy<C extends string, E extends EventName<PublishMap<S, C>> = EventName<PublishMap<S, C>>>(
    channel: C,
    options: DestroyOptions<E, EventData<PublishMap<S, C>, E>> = {},
  ): Promise<DestroyResult> {
    const msg: Record<string, unknown> = { type: 'destroy', channel };
    if (options.event !== undefined) msg.event = options.event;
    if (options.data !== undefined) msg.data = options.data;
    return this.requestNow(msg).then((r) => ({ epoch: r.epoch }));
  }

  /**
   * Calls a procedure of the app's backend through the server (`rpc`,
   * docs/backend-hooks.md); resolves with the backend's result `data`
   * (`null` when it gave none). Rejects with a HeraldError: the backend's
   * or the server's error code (`validation_failed` with `details`,
   * `forbidden`, `unavailable`, ...), `timeout` after `options.timeoutMs`
   * (default `requestTimeoutMs`), `disconnected` while not connected or when
   * the connection drops before the reply. An rpc is never sent again by the
   * client (the backend may not be idempotent): after `timeout` or a drop,
   * whether the backend ran it is unknown.
   * Typed by `herald typegen` (`proxy.rpc_schema`): the data and the result
   * of a declared method are checked at compile time.
   */
  rpc<M extends RpcMethod<S>>(method: M, ...args: RpcArgs<RpcRequest<S, M>, RpcOptions>): Promise<RpcResponse<S, M>> {
    const [data, options = {}] = args as [unknown, RpcOptions | undefined];
    if (typeof method !== 'string' || method.length === 0 || utf8Length(method) > 128) {
      return Promise.reject(new HeraldError('bad_request', 'rpc: method must be a string of 1 to 128 bytes'));
    }
    const msg: Record<string, unknown> = { type: 'rpc', method, data: data === undefined ? null : data };
    try {
      JSON.stringify(msg);
    } catch (e) {
      return Promise.reject(new HeraldError('bad_request', `rpc ${method}: data cannot be sent as JSON: ${errorMessage(e)}`, { cause: e }));
    }
    if (this._state === 'closed') return Promise.reject(new HeraldError('closed', 'the client was closed'));
    if (this._state !== 'connected') {
      return Promise.reject(new HeraldError('disconnected', `rpc ${method}: not connected (an rpc is not queued)`));
    }
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      this.call(
        msg,
        (err, reply) => {
          if (!err) {
            resolve((reply.data === undefined ? null : reply.data) as RpcResponse<S, M>);
          } else if (err.code === 'disconnected' && err.message === NOT_SENT) {
            reject(new HeraldError('disconnected', `rpc ${method}: not connected (an rpc is not queued)`));
          } else if (err.code === 'disconnected') {
            reject(
              new HeraldError(
                'disconnected',
                `rpc ${method}: the connection was lost before the reply (${err.message}); not sent again: the backend may or may not have run it`,
                { cause: err },
              ),
            );
          } else if (err.code === 'timeout') {
            reject(new HeraldError('timeout', `rpc ${method}: no reply within ${timeoutMs} ms; the backend may or may not have run it`));
          } else {
            reject(err);
          }
        },
        timeoutMs,
      );
    });
  }

  /** Number of publishes waiting for a connection (offline queue, and those to send again after a drop). */
  get queuedPublishes(): number {
    return this.queue.length;
  }

  /** Number of publishes not yet acknowledged nor refused: queued or in flight. */
  get pendingPublishes(): number {
    return this.queue.length + this.inflight.size + this.retrying.size;
  }

  // ---------------------------------------------------------------------
  // Connection

  private async open(): Promise<void> {
    this.reconnectTimer = null;
    const gen = this.generation;
    this.authError = null;
    this.setState('connecting');
    let token: string | undefined;
    try {
      token = typeof this.token === 'function' ? await this.token() : this.token;
      if (token !== undefined && typeof token !== 'string') throw new TypeError(`it returned ${typeof token}, not a string`);
    } catch (e) {
      if (gen !== this.generation) return;
      this.emitError(new HeraldError('token_failed', `token function failed: ${errorMessage(e)}`, { cause: e }));
      this.afterDrop(1006, 'token function failed');
      return;
    }
    if (gen !== this.generation) return; // close() meanwhile
    let data: unknown;
    try {
      data = typeof this.connectData === 'function' ? await (this.connectData as () => unknown)() : this.connectData;
      if (data !== undefined) JSON.stringify(data); // throws now rather than failing the send silently
    } catch (e) {
      if (gen !== this.generation) return;
      this.emitError(new HeraldError('data_failed', `connect data failed: ${errorMessage(e)}`, { cause: e }));
      this.afterDrop(1006, 'connect data failed');
      return;
    }
    if (gen !== this.generation) return;
    this.tokenInUse = token;
    this.expectedServerChannels = new Set(token ? tokenChannels(token) : []);
    let ws: WebSocketLike;
    const sse = this.onSse;
    let opened = false;
    try {
      ws = sse ? new SseSocket(this.sseUrl, this.ES!) : new this.WS!(this.url);
    } catch (e) {
      this.emitError(new HeraldError('socket_failed', `cannot open a WebSocket to ${this.url}: ${errorMessage(e)}`, { cause: e }));
      this.afterDrop(1006, 'socket failed');
      return;
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => {
      if (!sse && !opened && this.transports.includes('sse')) this.onSse = true; // a proxy that holds upgrades
      this.drop(ws, 'connect timeout');
    }, this.connectTimeoutMs);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.connectId = this.nextId++;
      const msg: Record<string, unknown> = { type: 'connect', id: this.connectId };
      if (token !== undefined) msg.token = token;
      if (data !== undefined) msg.data = data;
      this.send(msg);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.ws !== ws) return;
      this.onMessage(ws, ev.data);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.ws !== ws) return;
      // Never opened: no WebSocket gets through here; the next attempt uses SSE, if allowed.
      if (!sse && !opened && this.transports.includes('sse')) this.onSse = true;
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

  /** Gives up on a socket the server is about to close with `code`, as if it had. */
  private dropWith(ws: WebSocketLike, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    detach(ws);
    try {
      ws.close(1000, 'client closed');
    } catch {
      // ignore
    }
    this.afterDrop(code, reason);
  }

  private afterDrop(code: number, reason: string): void {
    this.clearTimers();
    this.forgetConnection();
    this.failPending(new HeraldError('disconnected', `connection lost (${code}${reason ? ` ${reason}` : ''})`));
    this.requeueInflight();
    this.emit('disconnected', { code, reason });
    if (code === CLOSE_UNAUTHORIZED) {
      const err =
        this.authError ??
        new HeraldError('unauthorized', `the server rejected the credentials (close ${code}${reason ? `: ${reason}` : ''})`);
      this.authError = null;
      // A function may give a newer token: one more try, at once. A string cannot change.
      if (typeof this.token === 'function' && !this.authRetried && this.reconnect !== null) {
        this.authRetried = true;
        this.emitError(err);
        this.setState('disconnected');
        this.scheduleOpen(0);
        return;
      }
      this.stop(err);
      return;
    }
    if (isTerminalClose(code)) {
      this.stop(
        new HeraldError('disconnected_by_server', `the server disconnected this user (close ${code}${reason ? `: ${reason}` : ''})`, {
          details: { code, reason },
        }),
      );
      return;
    }
    this.setState('disconnected');
    if (this.reconnect === null) return;
    let delay: number;
    if (code === CLOSE_RATE_LIMITED) {
      // Rate limited: back off further at every such close, and at least as long as the server asked.
      this.rateLimitCloses++;
      delay = Math.max(backoffDelay(Math.max(this.attempt, this.rateLimitCloses), this.reconnect, this.random), this.retryAfterMs);
      this.attempt++;
    } else {
      this.rateLimitCloses = 0;
      delay = backoffDelay(this.attempt++, this.reconnect, this.random);
    }
    this.retryAfterMs = 0;
    this.scheduleOpen(delay);
  }

  private scheduleOpen(delay: number): void {
    const gen = this.generation;
    this.reconnectTimer = setTimeout(() => {
      if (gen === this.generation) void this.open();
    }, delay);
  }

  /** The client stops by itself: state `closed`, `closeError` set, queued publishes rejected. */
  private stop(err: HeraldError): void {
    this.closeError = err;
    this.failQueue(err);
    this.setState('closed');
    this.emitError(err);
  }

  /** Forgets what belongs to the connection that ended (subscriptions stay, to be resumed). */
  private forgetConnection(): void {
    this.clientId = null;
    this.user = null;
    this.expires = null;
    this.connectionData = undefined;
    this.serverChannels.clear();
    for (const sub of this.channels.values()) this.resetSubscription(sub);
  }

  private onConnected(msg: { client?: unknown; ping?: unknown; user?: unknown; expires?: unknown; data?: unknown }): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.attempt = 0;
    this.authRetried = false;
    this.clientId = typeof msg.client === 'string' ? msg.client : null;
    this.user = typeof msg.user === 'string' ? msg.user : null;
    this.expires = typeof msg.expires === 'number' && Number.isFinite(msg.expires) ? msg.expires : null;
    this.connectionData = msg.data;
    const ping = typeof msg.ping === 'number' && msg.ping > 0 ? msg.ping : 0;
    this.pingMs = ping * 1000;
    this.armWatchdog();
    this.scheduleRefresh(false);
    this.setState('connected');
    const info: ConnectedInfo = { client: this.clientId ?? '', ping };
    if (this.user !== null) info.user = this.user;
    if (this.expires !== null) info.expires = this.expires;
    if (msg.data !== undefined) info.data = msg.data;
    this.emit('connected', info);
    if (this._state !== 'connected') return; // a listener closed us
    for (const sub of [...this.channels.values()]) this.startSubscription(sub);
    this.flushQueue();
  }

  /** Schedules `refresh` of the connection token before it expires (a token function only). */
  private scheduleRefresh(failed: boolean): void {
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const ws = this.ws;
    if (this.expires === null || typeof this.token !== 'function' || !ws) return;
    let delay = refreshDelay(this.expires * 1000 - Date.now());
    if (failed) delay = Math.max(delay, REFRESH_RETRY_MS);
    this.refreshTimer = setTimeout(() => void this.refreshToken(ws), delay);
  }

  private async refreshToken(ws: WebSocketLike): Promise<void> {
    this.refreshTimer = null;
    const tokenFn = this.token;
    if (this.ws !== ws || this._state !== 'connected' || typeof tokenFn !== 'function') return;
    let token: string;
    try {
      token = await tokenFn();
      if (typeof token !== 'string') throw new TypeError(`it returned ${typeof token}, not a string`);
    } catch (e) {
      if (this.ws !== ws) return;
      this.emitError(new HeraldError('token_failed', `token function failed (refresh): ${errorMessage(e)}`, { cause: e }));
      this.scheduleRefresh(true);
      return;
    }
    if (this.ws !== ws) return;
    if (token === this.tokenInUse) {
      // Nothing newer yet (e.g. a cached token): ask again later, before it lapses.
      this.scheduleRefresh(true);
      return;
    }
    this.call({ type: 'refresh', token }, (err, reply) => {
      if (this.ws !== ws) return;
      if (err) {
        if (err.code === 'disconnected' || err.code === 'closed') return;
        // The connection stays open with its old expiry: try again before it lapses.
        this.emitError(err);
        this.scheduleRefresh(true);
        return;
      }
      this.tokenInUse = token;
      this.expires = typeof reply.expires === 'number' && Number.isFinite(reply.expires) ? reply.expires : null;
      this.scheduleRefresh(false);
      this.emit('refreshed', this.expires === null ? {} : { expires: this.expires });
    });
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
        // Not before `connected`: a server with auth answers anything sent before it with an error.
        if (this._state === 'connected') this.send({ type: 'pong' });
        return;
      case 'event': {
        const sub = this.channels.get(msg.channel);
        if (sub && sub.active && !sub.subscribing && sub.epoch !== null) {
          if (sub.catchUp !== null) sub.catchUp.buffer.push(msg);
          else this.deliver(sub, msg);
          return;
        }
        const server = this.serverChannels.get(msg.channel);
        if (server && typeof msg.offset === 'number' && msg.offset > server.offset) server.offset = msg.offset;
        return;
      }
      case 'join':
      case 'leave': {
        if (typeof msg.channel !== 'string' || typeof msg.client !== 'string') return;
        const sub = this.channels.get(msg.channel);
        if (!sub || !sub.active || sub.subscribing) return;
        const member = { channel: msg.channel, ...presenceMember(msg) };
        if (msg.type === 'join') sub._emitMember('join', { ...member, userJoined: msg.user_joined === true });
        else sub._emitMember('leave', { ...member, userLeft: msg.user_left === true });
        return;
      }
    }
    if (msg.type === 'error' && msg.code === 'rate_limited' && typeof msg.retry_after_ms === 'number') {
      this.retryAfterMs = Math.max(0, msg.retry_after_ms);
    }
    if (msg.id !== undefined && msg.id === this.connectId && this._state === 'connecting') {
      if (msg.type === 'connected') {
        this.onConnected(msg);
        return;
      }
      const err = HeraldError.fromReply(msg);
      if (err.code === 'unauthorized' || err.code === 'token_expired') {
        // The server closes with 4001 next; act now, whatever arrives.
        this.authError = err;
        this.dropWith(ws, CLOSE_UNAUTHORIZED, err.message);
        return;
      }
      this.emitError(err);
      this.drop(ws, 'connect failed');
      return;
    }
    if (msg.id === undefined && this._state === 'connected') {
      if (msg.type === 'subscribed' && typeof msg.channel === 'string') {
        this.onServerSubscribed(msg);
        return;
      }
      if (msg.type === 'unsubscribed' && typeof msg.channel === 'string') {
        this.onServerUnsubscribed(msg.channel, typeof msg.reason === 'string' ? msg.reason : '');
        return;
      }
    }
    if (msg.id !== undefined && (msg.type === 'ack' || msg.type === 'error')) {
      const out = this.inflight.get(msg.id);
      if (out) {
        this.inflight.delete(msg.id);
        this.settlePublish(out, msg);
        return;
      }
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
    if (msg.type === 'error') {
      const err = HeraldError.fromReply(msg);
      // token_expired (or a refused connect) comes right before the 4001 close, and is reported with it.
      if (err.code === 'token_expired' || (err.code === 'unauthorized' && this._state === 'connecting')) this.authError = err;
      else this.emitError(err);
    }
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
  private call(
    msg: Record<string, unknown>,
    onReply: (err: HeraldError | null, reply?: any) => void,
    timeoutMs: number = this.requestTimeoutMs,
  ): void {
    const id = this.nextId++;
    if (!this.send({ ...msg, id })) {
      onReply(new HeraldError('disconnected', NOT_SENT));
      return;
    }
    const timer = setTimeout(() => {
      this.pending.delete(id);
      onReply(new HeraldError('timeout', `no reply to ${String(msg.type)} within ${timeoutMs} ms`));
    }, timeoutMs);
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

  /** Rejects every keyed publish, queued or in flight. */
  private failQueue(err: HeraldError): void {
    const all = [...this.queue, ...this.inflight.values(), ...this.retrying].sort((a, b) => a.seq - b.seq);
    this.queue = [];
    this.queueBytes = 0;
    this.inflight.clear();
    this.retrying.clear();
    for (const out of all) {
      if (out.deadline !== null) clearTimeout(out.deadline);
      if (out.retry !== null) clearTimeout(out.retry);
      out.reject(err);
    }
  }

  private enqueue(out: Outgoing): void {
    out.id = null;
    this.queue.push(out);
    this.queueBytes += out.bytes;
  }

  /** Sends a keyed publish on the current connection; back to the queue when the socket cannot take it. */
  private sendPublish(out: Outgoing): void {
    const id = this.nextId++;
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN || this._state !== 'connected') {
      this.enqueue(out);
      return;
    }
    try {
      ws.send(`${out.json.slice(0, -1)},"id":${id}}`);
    } catch {
      this.enqueue(out);
      return;
    }
    out.id = id;
    this.inflight.set(id, out);
  }

  /** The connection dropped: publishes in flight are sent again, with their keys, after the reconnect. */
  private requeueInflight(): void {
    if (this.inflight.size === 0) return;
    const back = [...this.inflight.values()];
    this.inflight.clear();
    for (const out of back) {
      out.id = null;
      this.queueBytes += out.bytes;
    }
    this.queue = [...back, ...this.queue].sort((a, b) => a.seq - b.seq);
  }

  /** Connected (subscriptions requested): the queued publishes go out in the order they were made. */
  private flushQueue(): void {
    const all = this.queue;
    this.queue = [];
    this.queueBytes = 0;
    for (const out of all) this.sendPublish(out);
  }

  /** The ack or error of a keyed publish. */
  private settlePublish(out: Outgoing, msg: any): void {
    if (msg.type === 'error' && msg.code === 'unavailable') {
      // The server could not store it now and stored nothing: the same
      // bytes again after a backoff, until acknowledged or the deadline.
      out.id = null;
      out.attempts += 1;
      const delay = Math.min(UNAVAILABLE_RETRY_MAX_MS, UNAVAILABLE_RETRY_MIN_MS * 2 ** (out.attempts - 1));
      this.retrying.add(out);
      out.retry = setTimeout(() => {
        out.retry = null;
        this.retrying.delete(out);
        if (this._state === 'connected') this.sendPublish(out);
        else this.enqueue(out);
      }, delay / 2 + Math.random() * (delay / 2));
      return;
    }
    if (out.deadline !== null) clearTimeout(out.deadline);
    out.deadline = null;
    if (msg.type === 'error') {
      const err = HeraldError.fromReply(msg);
      out.reject(err);
      return;
    }
    const result: PublishResult = {};
    if (typeof msg.offset === 'number') result.offset = msg.offset;
    result.replayed = msg.replayed === true;
    out.resolve(result);
  }

  /** `publishTimeoutMs` passed without an ack nor a refusal. */
  private publishExpired(out: Outgoing): void {
    out.deadline = null;
    const i = this.queue.indexOf(out);
    const sent = out.id !== null && this.inflight.get(out.id) === out;
    const refused = this.retrying.has(out);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.queueBytes -= out.bytes;
    } else if (sent) {
      this.inflight.delete(out.id as number);
    } else if (this.retrying.delete(out)) {
      if (out.retry !== null) clearTimeout(out.retry);
      out.retry = null;
    } else {
      return;
    }
    out.reject(
      new HeraldError(
        'timeout',
        `publish on ${out.channel} not acknowledged within ${this.publishTimeoutMs} ms (${sent ? 'sent, no reply yet' : refused ? `refused as unavailable ${out.attempts} time(s)` : 'never sent: not connected'}): the outcome is unknown, it may or may not have been stored; publishing it again with the same idempotencyKey (details.idempotencyKey) within the server's idempotency window cannot store it twice`,
        { details: { idempotencyKey: out.key, channel: out.channel } },
      ),
    );
  }

  // ---------------------------------------------------------------------
  // Subscriptions

  /** Brings a subscription up on the current connection: attached to a server-side one, or with `subscribe`. */
  private startSubscription(sub: Subscription<any>): void {
    const server = this.serverChannels.get(sub.channel);
    if (server) {
      this.attachServerSide(sub, server.epoch, server.offset);
      return;
    }
    if (this.expectedServerChannels.has(sub.channel)) {
      // In the token's `channels` claim: the server subscribes it by itself (a `subscribe` would be
      // "already subscribed"). Should its `subscribed` never come, subscribe after all.
      this.awaitServerSide(sub, () => this.sendSubscribe(sub));
      return;
    }
    this.sendSubscribe(sub);
  }

  private sendSubscribe(sub: Subscription<any>): void {
    const run = ++sub.run;
    this.clearSubTimer(sub);
    sub.subscribing = true;
    const getToken = sub.options.getToken;
    if (!getToken) {
      this.subscribeWith(sub, run, undefined);
      return;
    }
    const ws = this.ws;
    this.fetchSubToken(sub, getToken).then(
      (token) => {
        if (sub.run === run && sub.active && this.ws === ws) this.subscribeWith(sub, run, token);
      },
      (err: HeraldError) => {
        if (sub.run === run && sub.active && this.ws === ws) this.endSubscription(sub, err);
      },
    );
  }

  private subscribeWith(sub: Subscription<any>, run: number, token: string | undefined): void {
    const msg: Record<string, unknown> = { type: 'subscribe', channel: sub.channel };
    if (token !== undefined) msg.token = token;
    const recovering = sub.epoch !== null;
    if (recovering) msg.recover = { epoch: sub.epoch, offset: sub.offset };
    else if (sub.options.history !== undefined && sub.options.history > 0) msg.history = sub.options.history;
    const ws = this.ws;
    this.call(msg, (err, reply) => {
      if (sub.run !== run || !sub.active || this.channels.get(sub.channel) !== sub) return;
      sub.subscribing = false;
      if (!err) {
        sub.token = token ?? null;
        this.onSubscribed(sub, reply, recovering);
        this.scheduleSubRefresh(sub, token === undefined ? null : tokenExpiry(token), false);
        return;
      }
      if (err.code === 'disconnected' || err.code === 'closed') return; // resubscribed on reconnect
      if (err.code === 'timeout') {
        // The server may still subscribe us later: start over on a fresh connection.
        if (ws) this.drop(ws, 'subscribe timeout');
        return;
      }
      if (err.code === 'bad_request' && /already subscribed/.test(err.message)) {
        // The server subscribed the channel by itself (a `channels` claim the client could not
        // read): attach to that subscription; its `subscribed` may still be on its way.
        const server = this.serverChannels.get(sub.channel);
        if (server) this.attachServerSide(sub, server.epoch, server.offset);
        else this.awaitServerSide(sub, () => this.endSubscription(sub, err));
        return;
      }
      this.endSubscription(sub, err);
    });
  }

  /** Calls `getToken` for the channel; rejects with a `token_failed` HeraldError. */
  private fetchSubToken(sub: Subscription<any>, getToken: (channel: string) => string | Promise<string>): Promise<string> {
    return new Promise<string>((resolve) => resolve(getToken(sub.channel)))
      .then((token) => {
        if (typeof token !== 'string' || token === '') throw new TypeError(`it returned ${token === '' ? 'an empty string' : typeof token}`);
        return token;
      })
      .catch((e: unknown) => {
        throw new HeraldError('token_failed', `getToken(${sub.channel}) failed: ${errorMessage(e)}`, { cause: e });
      });
  }

  /** Sends `sub_refresh` with a new token from `getToken` before the subscription token's `exp`. */
  private scheduleSubRefresh(sub: Subscription<any>, exp: number | null, failed: boolean): void {
    this.clearSubTimer(sub);
    const getToken = sub.options.getToken;
    if (exp === null || !getToken || !sub.active) return;
    let delay = refreshDelay(exp * 1000 - Date.now());
    if (failed) delay = Math.max(delay, REFRESH_RETRY_MS);
    const run = sub.run;
    const ws = this.ws;
    const stale = () => sub.run !== run || !sub.active || this.ws !== ws;
    const retry = (err: HeraldError | null) => {
      if (err) this.emitError(err);
      this.scheduleSubRefresh(sub, exp, true);
    };
    sub.timer = setTimeout(() => {
      sub.timer = null;
      if (stale()) return;
      this.fetchSubToken(sub, getToken).then(
        (token) => {
          if (stale()) return;
          if (token === sub.token) return retry(null); // nothing newer yet
          this.call({ type: 'sub_refresh', channel: sub.channel, token }, (err, reply) => {
            if (stale()) return;
            if (err) {
              if (err.code === 'disconnected' || err.code === 'closed') return;
              retry(err); // the subscription stays, with its old expiry
              return;
            }
            sub.token = token;
            const expires = typeof reply.expires === 'number' && Number.isFinite(reply.expires) ? reply.expires : tokenExpiry(token);
            this.scheduleSubRefresh(sub, expires, false);
          });
        },
        (err: HeraldError) => {
          if (!stale()) retry(err);
        },
      );
    }, delay);
  }

  /** Waits for the server-side `subscribed` of the channel; `onTimeout` when none came within requestTimeoutMs. */
  private awaitServerSide(sub: Subscription<any>, onTimeout: () => void): void {
    const run = ++sub.run;
    this.clearSubTimer(sub);
    sub.subscribing = true;
    sub.timer = setTimeout(() => {
      sub.timer = null;
      if (sub.run === run && sub.active) onTimeout();
    }, this.requestTimeoutMs);
  }

  /** `subscribed` without id: the server subscribed this connection by itself (the token's `channels`). */
  private onServerSubscribed(msg: { channel: string; epoch?: unknown; offset?: unknown }): void {
    const epoch = typeof msg.epoch === 'string' ? msg.epoch : '';
    const offset = typeof msg.offset === 'number' ? msg.offset : 0;
    this.serverChannels.set(msg.channel, { epoch, offset });
    const sub = this.channels.get(msg.channel);
    if (sub && sub.active) this.attachServerSide(sub, epoch, offset);
  }

  /**
   * Makes a server-side subscription the app's: no `subscribe` is sent. The
   * first time, like a fresh subscribe (with its `history`, fetched); after a
   * reconnect in the same epoch, the missed events are fetched with `history`
   * and delivered before the live ones; in another epoch, recovery failed.
   */
  private attachServerSide(sub: Subscription<any>, epoch: string, offset: number): void {
    const run = ++sub.run;
    this.clearSubTimer(sub);
    sub.subscribing = false;
    sub.token = null;
    sub.catchUp = null;
    if (sub.epoch === null) {
      sub.epoch = epoch;
      const history = sub.options.history ?? 0;
      if (history > 0 && offset > 0) {
        sub.offset = 0;
        this.catchUpHistory(sub, run, offset, history);
        return;
      }
      sub.offset = offset;
      this.confirm(sub);
      return;
    }
    if (sub.epoch !== epoch) {
      this.failRecovery(sub, epoch, offset, { epoch: sub.epoch, offset: sub.offset });
      return;
    }
    this.catchUpMissed(sub, run, offset);
  }

  /** First attach with `history: n`: the last n events up to `target`, then the live ones held meanwhile. */
  private catchUpHistory(sub: Subscription<any>, run: number, target: number, n: number): void {
    const catchUp: CatchUp = { buffer: [] };
    sub.catchUp = catchUp;
    const ws = this.ws;
    this.call({ type: 'history', channel: sub.channel, limit: n, before: target + 1 }, (err, reply) => {
      if (sub.run !== run || !sub.active) return;
      if (err) {
        if (err.code === 'disconnected' || err.code === 'closed') return;
        if (err.code === 'timeout') {
          if (ws) this.drop(ws, 'history timeout');
          return;
        }
        this.emitError(err); // subscribed all the same, without the history
      } else {
        for (const ev of sortedEvents(reply.events)) {
          if (!sub.active) return;
          this.deliver(sub, ev);
        }
      }
      if (target > sub.offset) sub.offset = target;
      sub.catchUp = null;
      this.confirm(sub);
      this.flushHeld(sub, catchUp.buffer);
    });
  }

  /** After a reconnect: pages of `history` after the last offset seen, up to `target`, then the live ones held meanwhile. */
  private catchUpMissed(sub: Subscription<any>, run: number, target: number): void {
    const catchUp: CatchUp = { buffer: [] };
    sub.catchUp = catchUp;
    const previous: ChannelPosition = { epoch: sub.epoch as string, offset: sub.offset };
    const ws = this.ws;
    let missed = 0;
    const failed = () => {
      sub.catchUp = null;
      this.failRecovery(sub, previous.epoch, Math.max(target, sub.offset), previous);
      this.flushHeld(sub, catchUp.buffer);
    };
    const page = (): void => {
      if (sub.offset >= target) {
        sub.catchUp = null;
        sub._resolveReady();
        const info: RecoveredInfo = { channel: sub.channel, epoch: previous.epoch, offset: sub.offset, missed };
        this.callback(() => sub.options.onRecovered?.(info));
        this.emit('recovered', info);
        if (sub.active) this.emit('subscribed', { channel: sub.channel, epoch: previous.epoch, offset: sub.offset });
        this.flushHeld(sub, catchUp.buffer);
        return;
      }
      this.call({ type: 'history', channel: sub.channel, after: sub.offset, limit: CATCH_UP_PAGE }, (err, reply) => {
        if (sub.run !== run || !sub.active) return;
        if (err) {
          if (err.code === 'disconnected' || err.code === 'closed') return;
          if (err.code === 'timeout') {
            if (ws) this.drop(ws, 'history timeout');
            return;
          }
          this.emitError(err); // e.g. no history capability: the missed events cannot be fetched
          failed();
          return;
        }
        const events = sortedEvents(reply.events);
        if (reply.epoch !== previous.epoch || events.length === 0) {
          failed(); // the epoch changed meanwhile, or the missed events are gone
          return;
        }
        for (const ev of events) {
          if ((ev.offset as number) <= sub.offset) continue;
          if (ev.offset !== sub.offset + 1) {
            failed(); // a gap: events dropped by retention
            return;
          }
          this.deliver(sub, ev);
          missed++;
          if (sub.run !== run || !sub.active) return;
        }
        page();
      });
    };
    page();
  }

  /** Live events that arrived while catching up, in order, without the ones already delivered. */
  private flushHeld(sub: Subscription<any>, held: HeraldEvent[]): void {
    for (const ev of held) {
      if (!sub.active || sub.catchUp !== null) return;
      this.deliver(sub, ev);
    }
  }

  /** The subscription is live on this connection: `ready` resolves, `subscribed` is emitted. */
  private confirm(sub: Subscription<any>): void {
    sub._resolveReady();
    if (sub.active) this.emit('subscribed', { channel: sub.channel, epoch: sub.epoch as string, offset: sub.offset });
  }

  /** Events may have been missed: the app must refetch; delivery goes on from `{epoch, offset}`. */
  private failRecovery(sub: Subscription<any>, epoch: string, offset: number, previous: ChannelPosition): void {
    sub.epoch = epoch;
    sub.offset = offset;
    const info: RecoveryFailedInfo = { channel: sub.channel, epoch, offset, previous };
    this.callback(() => sub.options.onRecoveryFailed?.(info));
    this.emit('recoveryFailed', info);
    this.confirm(sub);
  }

  /** `unsubscribed` without id: the server ended a subscription on its own. */
  private onServerUnsubscribed(channel: string, reason: string): void {
    this.serverChannels.delete(channel);
    this.expectedServerChannels.delete(channel);
    const sub = this.channels.get(channel);
    if (!sub || !sub.active || sub.subscribing) return;
    this.emit('unsubscribed', { channel, reason });
    if (!sub.active) return; // a listener unsubscribed it
    if ((reason === 'token_expired' && sub.options.getToken) || reason === 'resubscribe') {
      // A new token, or (`resubscribe`: engine redis, the node could not keep this
      // channel's events in order) the same: `recover` from the last event
      // delivered, so nothing is missed or duplicated.
      this.sendSubscribe(sub);
      return;
    }
    // kicked, destroyed, expired: final; the app decides whether to subscribe again.
    const known = ENDED_BY_SERVER.get(reason);
    const code = known === undefined ? 'unsubscribed' : reason;
    const why = known ?? (reason || 'no reason given');
    this.endSubscription(sub, new HeraldError(code, `the server ended the subscription to ${channel}: ${why}`, { details: { reason } }));
  }

  /** The subscription ends without unsubscribe(): `ready` rejects, onError and the `error` event. */
  private endSubscription(sub: Subscription<any>, err: HeraldError): void {
    sub.active = false;
    this.resetSubscription(sub);
    if (this.channels.get(sub.channel) === sub) this.channels.delete(sub.channel);
    sub._rejectReady(err);
    this.callback(() => sub.options.onError?.(err));
    this.emitError(err);
  }

  /** Forgets the subscription's state on a connection that ended (keeps its epoch and offset). */
  private resetSubscription(sub: Subscription<any>): void {
    sub.run++;
    this.clearSubTimer(sub);
    sub.subscribing = false;
    sub.catchUp = null;
    sub.token = null;
  }

  private clearSubTimer(sub: Subscription<any>): void {
    if (sub.timer !== null) clearTimeout(sub.timer);
    sub.timer = null;
  }

  private onSubscribed(sub: Subscription<any>, reply: any, recovering: boolean): void {
    const events: HeraldEvent[] = Array.isArray(reply.events) ? reply.events : [];
    if (recovering && reply.recovered === false) {
      this.failRecovery(sub, reply.epoch, reply.offset, { epoch: sub.epoch as string, offset: sub.offset });
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
    if (recovering) {
      sub._resolveReady();
      const info: RecoveredInfo = { channel: sub.channel, epoch: reply.epoch, offset: sub.offset, missed: events.length };
      this.callback(() => sub.options.onRecovered?.(info));
      this.emit('recovered', info);
      if (sub.active) this.emit('subscribed', { channel: sub.channel, epoch: reply.epoch, offset: sub.offset });
      return;
    }
    this.confirm(sub);
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
    this.resetSubscription(sub);
    if (this.channels.get(sub.channel) === sub) this.channels.delete(sub.channel);
    // The server drops its own subscription too: a later subscribe() sends `subscribe`.
    this.serverChannels.delete(sub.channel);
    this.expectedServerChannels.delete(sub.channel);
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
    for (const t of [this.reconnectTimer, this.connectTimer, this.watchdog, this.refreshTimer]) if (t !== null) clearTimeout(t);
    this.reconnectTimer = this.connectTimer = this.watchdog = this.refreshTimer = null;
  }
}

/** `unsubscribed` reasons that are their own HeraldError code, and what they mean. */
const ENDED_BY_SERVER: ReadonlyMap<string, string> = new Map([
  ['kicked', 'removed by the server'],
  ['token_expired', 'its token expired'],
  ['destroyed', 'the channel was destroyed'],
  ['expired', 'the channel expired'],
]);

/** A presence member from the wire (`presence` reply, `join`, `leave`): its fields that are present. */
function presenceMember(m: { client?: unknown; user?: unknown; info?: unknown }): PresenceMember {
  const member: PresenceMember = { client: typeof m.client === 'string' ? m.client : '' };
  if (typeof m.user === 'string') member.user = m.user;
  if (m.info !== undefined) member.info = m.info;
  return member;
}

/** The events of a history reply with an offset, oldest first. */
function sortedEvents(events: unknown): HeraldEvent[] {
  if (!Array.isArray(events)) return [];
  return (events as HeraldEvent[]).filter((e) => e && typeof e.offset === 'number').sort((a, b) => (a.offset as number) - (b.offset as number));
}

/** A random idempotency key: a UUID where the platform has one, else 25 random base36 characters. */
export function newIdempotencyKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c && typeof c.randomUUID === 'function') {
    try {
      return c.randomUUID(); // absent (or throwing) outside secure contexts in browsers
    } catch {
      // fall through
    }
  }
  const bytes = new Uint8Array(25);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let s = '';
  for (const b of bytes) s += (b % 36).toString(36);
  return s;
}

const KEY_CHARS = /^[A-Za-z0-9_\-.:]*$/;

/** Why `key` is not a valid idempotency key (the server's rule), or null. */
export function idempotencyKeyError(key: unknown): string | null {
  if (typeof key !== 'string') return 'must be a string';
  if (key.length === 0) return 'must not be empty';
  if (key.length > 128) return 'too long (max 128 bytes)';
  if (!KEY_CHARS.test(key)) {
    const i = [...key].findIndex((ch) => !KEY_CHARS.test(ch));
    return `invalid character '${[...key][i]}' at ${i}; allowed: letters, digits and _-.:`;
  }
  return null;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function detach(ws: WebSocketLike): void {
  ws.onopen = ws.onmessage = ws.onclose = null;
  ws.onerror = () => {}; // late errors of a dropped socket must not crash Node
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
