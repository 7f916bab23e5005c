// HeraldError: the one error type the client rejects and emits, carrying a
// machine-readable `code` (a server error code from docs/protocol.md section 8,
// or one of the SDKs' own codes listed in ClientErrorCode), for the HTTP
// API (@herald/server) the HTTP status, and for `rate_limited` the time to
// wait (`retryAfterMs`).

/** Error codes the server sends (docs/protocol.md, section 8). */
export type ServerErrorCode =
  | 'bad_request'
  | 'invalid_json'
  | 'unknown_type'
  | 'unauthorized'
  | 'token_expired'
  | 'forbidden'
  | 'unknown_channel'
  | 'not_subscribed'
  | 'channel_full'
  | 'validation_failed'
  | 'too_large'
  | 'rate_limited'
  /** an idempotency key reused on the channel for another event or data (HTTP 409) */
  | 'idempotency_conflict'
  /** the server's storage cannot take the request now; nothing stored, retry (HTTP 503) */
  | 'unavailable'
  | 'internal';

/** Error codes produced by the client itself. */
export type ClientErrorCode =
  /**
   * no reply within `requestTimeoutMs`; for a publish: no ack within
   * `publishTimeoutMs` (the outcome is unknown: it may have been stored;
   * `details.idempotencyKey` is its key, safe to publish again with)
   */
  | 'timeout'
  /** not connected (and no offline queue, or an ephemeral publish), or the connection dropped before the reply */
  | 'disconnected'
  /** the offline queue is full (`offlineQueue.max` publishes or `maxBytes` bytes) */
  | 'queue_full'
  /** `close()` was called */
  | 'closed'
  /** the `token` function threw or rejected */
  | 'token_failed'
  /** the `data` function (connect data) threw or rejected, or its value is not JSON */
  | 'data_failed'
  /** the WebSocket could not be created */
  | 'socket_failed'
  /** the channel already has a Subscription on this client */
  | 'already_subscribed'
  /** an application callback (onEvent, ...) threw */
  | 'listener_failed'
  /** the server closed the connection with 4003 (an admin disconnected this user): the client stops */
  | 'disconnected_by_server'
  /** the server ended a subscription: `unsubscribed` with reason `kicked` (an admin removed the user) */
  | 'kicked'
  /** the server ended a subscription: `unsubscribed` with reason `destroyed` (the channel was destroyed) */
  | 'destroyed'
  /** the server ended a subscription: `unsubscribed` with reason `expired` (the channel reached its `channel_ttl_ms`) */
  | 'expired'
  /** the server ended a subscription for another reason (`details.reason`) */
  | 'unsubscribed'
  /** HTTP API (@herald/server): the server could not be reached (refused, DNS, reset) */
  | 'unreachable'
  /** HTTP API (@herald/server): the reply was not the JSON the API documents */
  | 'bad_response';

export type HeraldErrorCode = ServerErrorCode | ClientErrorCode | (string & {});

export class HeraldError extends Error {
  readonly code: HeraldErrorCode;
  /** `details` of a server error, when it has some. */
  readonly details?: unknown;
  /** the HTTP status, for errors of the HTTP API */
  readonly status?: number;
  /** `rate_limited`: how long to wait before trying again, in ms (the server's `retry_after_ms`) */
  readonly retryAfterMs?: number;

  constructor(
    code: HeraldErrorCode,
    message: string,
    options: { details?: unknown; cause?: unknown; status?: number; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'HeraldError';
    this.code = code;
    if (options.details !== undefined) this.details = options.details;
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    if (options.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }

  /** The error of a server `error` reply (WebSocket message or HTTP body) `{code, message, details?, retry_after_ms?}`. */
  static fromReply(
    reply: { code?: unknown; message?: unknown; details?: unknown; retry_after_ms?: unknown },
    status?: number,
  ): HeraldError {
    const code = typeof reply.code === 'string' ? reply.code : 'internal';
    const message = typeof reply.message === 'string' ? reply.message : code;
    const retry = reply.retry_after_ms;
    const retryAfterMs = typeof retry === 'number' && Number.isFinite(retry) && retry >= 0 ? retry : undefined;
    return new HeraldError(code, message, { details: reply.details, status, retryAfterMs });
  }
}
