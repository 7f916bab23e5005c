// Wire types of Herald protocol v1 (docs/protocol.md) as the client sees
// them, and the minimal WebSocket interface the client needs, so that the
// browser's WebSocket, Node's global one and the `ws` package all fit.

/** `from` of an event: who published it (absent for HTTP publishes). */
export interface EventOrigin {
  /** the publisher's connection id */
  client: string;
  /** the publisher's user (its connection token's `sub`); absent for anonymous publishers */
  user?: string;
  /** the `info` claim of the publisher's connection token (any JSON), when it has one */
  info?: unknown;
}

/**
 * One event of a channel, live or from history/recovery (protocol section 7).
 * `T` is the payload, `E` the event name and `C` the channel (narrowed by the
 * typed-events generics, see schema.ts).
 */
export interface HeraldEvent<T = unknown, E extends string = string, C extends string = string> {
  type: 'event';
  channel: C;
  event: E;
  /** absent for ephemeral events */
  offset?: number;
  ts: number;
  from?: EventOrigin;
  data: T;
}

export interface PublishOptions {
  /** not stored, no offset; delivered only to current subscribers (never has an idempotency key, never retried) */
  ephemeral?: boolean;
  /**
   * the publish's idempotency key: 1..128 characters of `A-Z a-z 0-9 _ - . :`
   * (a UUID fits). Default: a random one per publish call. Publishing again
   * with the same key, event and data on the same channel within the
   * server's `idempotency_window_ms` stores nothing and resolves with the
   * original offset (`replayed: true`); with other event or data it is
   * refused with `idempotency_conflict`.
   */
  idempotencyKey?: string;
}

export interface PublishResult {
  /** the event's offset; absent for ephemeral events */
  offset?: number;
  /**
   * true when the server had already stored this publish (same idempotency
   * key): nothing was stored again, `offset` is the original one. false for
   * a first publish; absent for ephemeral events.
   */
  replayed?: boolean;
}

export interface HistoryOptions {
  limit?: number;
  before?: number;
  after?: number;
}

export interface HistoryResult<Ev = HeraldEvent> {
  channel: string;
  epoch: string;
  offset: number;
  events: Ev[];
}

/**
 * One member of a channel's presence: one subscribed connection (protocol
 * section 13). A user with two tabs is two members with two `client`s.
 */
export interface PresenceMember {
  /** the member's connection id */
  client: string;
  /** its user (the connection token's `sub`); absent for anonymous connections */
  user?: string;
  /** the `info` claim of its connection token (any JSON), when it has one */
  info?: unknown;
}

/** The `presence` reply: who is subscribed to the channel now. */
export interface PresenceResult {
  /** one per subscribed connection; `[]` when `complete` is false */
  members: PresenceMember[];
  /** false when the channel has more members than its namespace's `presence_max_members` (only counts are kept) */
  complete: boolean;
}

/** The `presence_stats` reply. */
export interface PresenceStats {
  /** subscribed connections */
  clients: number;
  /** distinct verified users among them; absent over `presence_max_members` */
  users?: number;
}

/** A member arrived on a subscribed channel (`join`, namespaces with `join_leave = true`). */
export interface JoinInfo extends PresenceMember {
  channel: string;
  /** this is the user's first connection in the channel (always true for anonymous members): show "Ana joined" */
  userJoined: boolean;
}

/** A member went away (`leave`; not sent to the leaving member). */
export interface LeaveInfo extends PresenceMember {
  channel: string;
  /** this was the user's last connection in the channel (always true for anonymous members): show "Ana left" */
  userLeft: boolean;
}

/** `destroy` options: a final event delivered to every subscriber before they are unsubscribed. */
export interface DestroyOptions<E extends string = string, T = unknown> {
  /** the final event's name; none when absent */
  event?: E;
  /** its payload (default `null`), checked like a publish's */
  data?: T;
}

export interface DestroyResult {
  /** the channel's new epoch */
  epoch: string;
}

/** The position of a channel the client has seen up to. */
export interface ChannelPosition {
  epoch: string;
  offset: number;
}

export interface RecoveredInfo {
  channel: string;
  epoch: string;
  offset: number;
  /** how many missed events the server sent back */
  missed: number;
}

export interface RecoveryFailedInfo {
  channel: string;
  /** the channel's new starting point */
  epoch: string;
  offset: number;
  /** where the client was when the connection dropped */
  previous: ChannelPosition;
}

/** What the client needs of a WebSocket instance (browser, Node >= 22 global, or `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface RpcOptions {
  /** how long to wait for the reply (default: the client's `requestTimeoutMs`); then it rejects with `timeout` */
  timeoutMs?: number;
}
