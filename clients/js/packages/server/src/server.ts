// HeraldServer: the typed client of Herald's HTTP API (docs/protocol.md
// section 10) for application backends: publish and history, presence and
// its counts, destroying a channel (with a typed final event), and the admin
// actions disconnect (close a user's connections), unsubscribe (remove a
// user from a channel), the list of channels and the server's info, over
// the global fetch (Node >= 18, Next.js route
// handlers, edge runtimes), authenticated with an API key. Every failure is
// a HeraldError: the server's code and HTTP status (401 `unauthorized` for a
// missing or bad key, 403 `forbidden` for a key without the scope), or
// `timeout`, `unreachable`, `bad_response`. A publish carries an
// idempotency key (the caller's or a random one, in the body and as the
// `Idempotency-Key` header) and is retried with that same key after a
// network error, a timeout or a 5xx (bounded attempts, backoff): the server
// stores it at most once and answers a repeat with the original offset
// (`replayed: true`). Ephemeral publishes have no key and are not retried.

import {
  HeraldError,
  idempotencyKeyError,
  newIdempotencyKey,
  type AnySchema,
  type DestroyOptions,
  type DestroyResult,
  type EventData,
  type EventName,
  type HistoryOptions,
  type HistoryResult,
  type PresenceMember,
  type PresenceResult,
  type PresenceStats,
  type PublishMap,
  type PublishOptions,
  type PublishResult,
  type ReceivedEvent,
  type SchemaShape,
} from '@herald/client';

export interface HeraldServerOptions {
  /** base URL of the server's HTTP API, e.g. `http://localhost:8080` */
  url: string;
  /** an API key of the server's `[[api.keys]]`, sent as `Authorization: Bearer <apiKey>` on every request (none when undefined or empty) */
  apiKey?: string;
  /** how long one request may take, in ms (default 10000) */
  timeoutMs?: number;
  /** fetch implementation (default: the global one) */
  fetch?: typeof fetch;
  /**
   * retries of a publish (same idempotency key) after a network error, a
   * timeout or a 5xx: `attempts` in all (default 4), waiting
   * `initialDelayMs` (200) doubling up to `maxDelayMs` (2000), with jitter;
   * `false`: one attempt
   */
  retry?: Partial<PublishRetryOptions> | false;
}

export interface PublishRetryOptions {
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_PUBLISH_RETRY: PublishRetryOptions = { attempts: 4, initialDelayMs: 200, maxDelayMs: 2000 };

export interface ChannelsOptions {
  /** only channels whose name starts with this (e.g. `chat:`) */
  prefix?: string;
  /** at most this many channels (the server's default 100, at most 10000) */
  limit?: number;
}

export interface ChannelsResult {
  /** channels with subscribers now, sorted by name; `subscribers` counts connections */
  channels: { channel: string; subscribers: number }[];
  /** how many channels matched before `limit` */
  total: number;
}

/** `GET /api/info` */
export interface ServerInfo {
  version: string;
  /** seconds since the server started (`uptime_s`) */
  uptimeS: number;
  /** worker threads */
  workers: number;
  /** open WebSocket connections */
  connections: number;
  /** active subscriptions */
  subscriptions: number;
  /** channels with subscribers */
  channels: number;
  /** the storage engine (`engine.type`), e.g. `sqlite` */
  engine: string;
}

/**
 * `S` is the typed-events schema (`HeraldSchema` from `herald typegen`), the
 * same as `Herald<S>` of @herald/client; the default accepts anything.
 */
export class HeraldServer<S extends SchemaShape = AnySchema> {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;
  private readonly retry: PublishRetryOptions;

  constructor(options: HeraldServerOptions) {
    if (!options || typeof options.url !== 'string') throw new TypeError('HeraldServer: options.url is required');
    this.base = options.url.replace(/\/+$/, '');
    this.headers = { accept: 'application/json' };
    if (options.apiKey !== undefined && options.apiKey !== '') {
      if (typeof options.apiKey !== 'string' || /\s/.test(options.apiKey)) {
        throw new TypeError('HeraldServer: options.apiKey must be a string without spaces (check HERALD_API_KEY)');
      }
      this.headers.authorization = `Bearer ${options.apiKey}`;
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const f = options.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    if (!f) throw new TypeError('HeraldServer: no global fetch (Node >= 18 has one); pass options.fetch');
    this.fetch = f;
    this.retry = options.retry === false ? { ...DEFAULT_PUBLISH_RETRY, attempts: 1 } : { ...DEFAULT_PUBLISH_RETRY, ...options.retry };
    if (!(this.retry.attempts >= 1)) throw new RangeError('HeraldServer: retry.attempts must be >= 1');
  }

  /**
   * Publishes an event (`POST /api/publish`); resolves once it is stored,
   * with `{offset, replayed}` (`{}` if ephemeral). The idempotency key
   * (`options.idempotencyKey`, or a random one) is sent in the body and as
   * the `Idempotency-Key` header; after a network error, a timeout or a 5xx
   * the same request is sent again (see `retry`), so it is stored at most
   * once; `replayed: true` says an earlier attempt (or an earlier call with
   * this key) had stored it. When every attempt failed, the last error is
   * thrown with `details.idempotencyKey`: publishing again with that key
   * within the server's idempotency window is safe.
   */
  async publish<C extends string, E extends EventName<PublishMap<S, C>>>(
    channel: C,
    event: E,
    data: EventData<PublishMap<S, C>, E>,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    const body: Record<string, unknown> = { channel, event, data: data === undefined ? null : data };
    if (options.ephemeral) {
      if (options.idempotencyKey !== undefined) throw new HeraldError('bad_request', 'idempotency_key: not allowed on ephemeral events');
      body.ephemeral = true;
      await this.request('POST', '/api/publish', JSON.stringify(body));
      return {};
    }
    const key = options.idempotencyKey ?? newIdempotencyKey();
    const bad = idempotencyKeyError(key);
    if (bad) throw new HeraldError('bad_request', `idempotency_key: ${bad}`);
    body.idempotency_key = key;
    const json = JSON.stringify(body);
    const headers = { 'idempotency-key': key };
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await this.request('POST', '/api/publish', json, headers);
        if (typeof reply.offset !== 'number') throw new HeraldError('bad_response', 'publish: the reply has no offset');
        return { offset: reply.offset, replayed: reply.replayed === true };
      } catch (e) {
        if (!(e instanceof HeraldError) || !retriable(e)) throw e;
        if (attempt >= this.retry.attempts) {
          throw new HeraldError(
            e.code,
            `${e.message} (publish gave up after ${attempt} attempt${attempt === 1 ? '' : 's'} with idempotency key ${key}: the outcome is unknown; publishing again with this key cannot store it twice)`,
            { status: e.status, cause: e, details: { idempotencyKey: key, channel } },
          );
        }
        const base = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, Math.round(base * (0.5 + Math.random() / 2))));
      }
    }
  }

  /** Reads stored events of a channel (`GET /api/channels/{channel}/history`), oldest first. */
  async history<C extends string>(channel: C, options: HistoryOptions = {}): Promise<HistoryResult<ReceivedEvent<S, C>>> {
    const query = new URLSearchParams();
    for (const k of ['limit', 'before', 'after'] as const) if (options[k] !== undefined) query.set(k, String(options[k]));
    const qs = query.toString() ? `?${query}` : '';
    const reply = await this.request('GET', `${channelPath(channel)}/history${qs}`);
    if (!Array.isArray(reply.events)) throw new HeraldError('bad_response', 'history: the reply has no events array');
    return { channel: reply.channel, epoch: reply.epoch, offset: reply.offset, events: reply.events };
  }

  /**
   * Who is subscribed to a channel now (`GET
   * /api/channels/{channel}/presence`): one member per connection;
   * `complete: false` and no members over the namespace's
   * `presence_max_members`. Needs the `presence` scope; `forbidden` when the
   * namespace has no `presence = true`.
   */
  async presence<C extends string>(channel: C): Promise<PresenceResult> {
    const reply = await this.request('GET', `${channelPath(channel)}/presence`);
    if (!Array.isArray(reply.members) || typeof reply.complete !== 'boolean') {
      throw new HeraldError('bad_response', 'presence: the reply has no members array or complete flag');
    }
    return { members: reply.members.map(presenceMember), complete: reply.complete };
  }

  /** How many connections and distinct users are subscribed (`GET /api/channels/{channel}/presence-stats`); scope `presence`. */
  async presenceStats<C extends string>(channel: C): Promise<PresenceStats> {
    const reply = await this.request('GET', `${channelPath(channel)}/presence-stats`);
    const stats: PresenceStats = { clients: count(reply, 'clients') };
    if (reply.users !== undefined) stats.users = count(reply, 'users');
    return stats;
  }

  /**
   * Destroys a channel (`DELETE /api/channels/{channel}`): the final event,
   * if given (typed like a publish; not stored, no offset), reaches every
   * subscriber, then their subscriptions end (`unsubscribed` reason
   * `destroyed`); the history is deleted and the channel starts again in a
   * new epoch, which this resolves with. Scope `destroy` or `admin`.
   */
  async destroy<C extends string, E extends EventName<PublishMap<S, C>> = EventName<PublishMap<S, C>>>(
    channel: C,
    options: DestroyOptions<E, EventData<PublishMap<S, C>, E>> = {},
  ): Promise<DestroyResult> {
    const body: Record<string, unknown> = {};
    if (options.event !== undefined) body.event = options.event;
    if (options.data !== undefined) body.data = options.data;
    const path = channelPath(requireString(channel, 'destroy: channel'));
    const reply = await this.request('DELETE', path, Object.keys(body).length > 0 ? JSON.stringify(body) : undefined);
    if (typeof reply.epoch !== 'string') throw new HeraldError('bad_response', 'destroy: the reply has no epoch');
    return { epoch: reply.epoch };
  }

  /** Channels with subscribers now, across every worker, sorted by name (`GET /api/channels`); scope `admin`. */
  async channels(options: ChannelsOptions = {}): Promise<ChannelsResult> {
    const query = new URLSearchParams();
    if (options.prefix !== undefined) query.set('prefix', options.prefix);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    const qs = query.toString() ? `?${query}` : '';
    const reply = await this.request('GET', `/api/channels${qs}`);
    if (!Array.isArray(reply.channels)) throw new HeraldError('bad_response', 'channels: the reply has no channels array');
    return {
      channels: reply.channels.map((c: { channel?: unknown; subscribers?: unknown }) => ({
        channel: String(c.channel),
        subscribers: count(c, 'subscribers'),
      })),
      total: count(reply, 'total'),
    };
  }

  /** The server's version, uptime and counts (`GET /api/info`); scope `admin`. */
  async info(): Promise<ServerInfo> {
    const reply = await this.request('GET', '/api/info');
    if (typeof reply.version !== 'string') throw new HeraldError('bad_response', 'info: the reply has no version');
    return {
      version: reply.version,
      uptimeS: typeof reply.uptime_s === 'number' ? reply.uptime_s : count(reply, 'uptime_s'),
      workers: count(reply, 'workers'),
      connections: count(reply, 'connections'),
      subscriptions: count(reply, 'subscriptions'),
      channels: count(reply, 'channels'),
      engine: String(reply.engine),
    };
  }

  /**
   * Closes every connection of `user` with close code 4003 (`POST
   * /api/disconnect`; the clients do not reconnect); resolves how many were
   * closed. Needs a key with the `admin` scope.
   */
  async disconnect(user: string, reason?: string): Promise<{ disconnected: number }> {
    const body: Record<string, unknown> = { user: requireString(user, 'disconnect: user') };
    if (reason !== undefined) body.reason = reason;
    const reply = await this.request('POST', '/api/disconnect', JSON.stringify(body));
    return { disconnected: count(reply, 'disconnected') };
  }

  /**
   * Removes `user` from `channel` on every connection (`POST
   * /api/unsubscribe`; the clients get `unsubscribed` with reason `kicked` and
   * do not subscribe again); resolves how many subscriptions ended. Needs a
   * key with the `admin` scope.
   */
  async unsubscribe<C extends string>(user: string, channel: C): Promise<{ unsubscribed: number }> {
    const body = { user: requireString(user, 'unsubscribe: user'), channel: requireString(channel, 'unsubscribe: channel') };
    const reply = await this.request('POST', '/api/unsubscribe', JSON.stringify(body));
    return { unsubscribed: count(reply, 'unsubscribed') };
  }

  private async request(method: string, path: string, body?: string, extra?: Record<string, string>): Promise<any> {
    let headers = body === undefined ? this.headers : { ...this.headers, 'content-type': 'application/json' };
    if (extra) headers = { ...headers, ...extra };
    const what = `${method} ${path}`;
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(this.base + path, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      text = await res.text();
    } catch (e) {
      const name = (e as { name?: string })?.name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new HeraldError('timeout', `${what}: no reply from ${this.base} within ${this.timeoutMs} ms`, { cause: e });
      }
      const reason = causeMessage(e);
      throw new HeraldError('unreachable', `${what}: cannot reach ${this.base}: ${reason}`, { cause: e });
    }
    let reply: any;
    try {
      reply = JSON.parse(text);
    } catch {
      reply = null;
    }
    if (res.ok && reply && typeof reply === 'object') return reply;
    if (reply && typeof reply === 'object' && typeof reply.code === 'string') throw HeraldError.fromReply(reply, res.status);
    throw new HeraldError('bad_response', `${what}: HTTP ${res.status} with a body that is not the API's JSON`, {
      status: res.status,
    });
  }
}

/** A failure after which the publish may or may not have been stored: send it again with its key. */
function retriable(e: HeraldError): boolean {
  return e.code === 'timeout' || e.code === 'unreachable' || (e.status !== undefined && e.status >= 500);
}

/** `/api/channels/{channel}`, the name percent-encoded (`chat%3Aroom`). */
function channelPath(channel: string): string {
  return `/api/channels/${encodeURIComponent(channel)}`;
}

function presenceMember(m: { client?: unknown; user?: unknown; info?: unknown }): PresenceMember {
  const member: PresenceMember = { client: String(m.client) };
  if (typeof m.user === 'string') member.user = m.user;
  if (m.info !== undefined) member.info = m.info;
  return member;
}

function requireString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw new TypeError(`HeraldServer.${what} must be a non-empty string`);
  return v;
}

function count(reply: Record<string, unknown>, field: string): number {
  const n = reply[field];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new HeraldError('bad_response', `the reply has no ${field} count`);
  }
  return n;
}

/** fetch's "fetch failed" hides the reason (ECONNREFUSED, ENOTFOUND, ...) in `cause`. */
function causeMessage(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return e instanceof Error ? e.message : String(e);
}
