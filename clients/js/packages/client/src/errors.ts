// HeraldError: the one error type the client rejects and emits, carrying a
// machine-readable `code` (a server error code from docs/protocol.md section 8,
// or one of the client's own codes listed in ClientErrorCode).

/** Error codes the server sends (docs/protocol.md, section 8). */
export type ServerErrorCode =
  | 'bad_request'
  | 'invalid_json'
  | 'unknown_type'
  | 'unauthorized'
  | 'forbidden'
  | 'unknown_channel'
  | 'not_subscribed'
  | 'validation_failed'
  | 'too_large'
  | 'rate_limited'
  | 'internal';

/** Error codes produced by the client itself. */
export type ClientErrorCode =
  /** no reply within `requestTimeoutMs` */
  | 'timeout'
  /** not connected (and no offline queue), or the connection dropped before the reply */
  | 'disconnected'
  /** the offline queue is full */
  | 'queue_full'
  /** `close()` was called */
  | 'closed'
  /** the `token` function threw or rejected */
  | 'token_failed'
  /** the WebSocket could not be created */
  | 'socket_failed'
  /** the channel already has a Subscription on this client */
  | 'already_subscribed'
  /** an application callback (onEvent, ...) threw */
  | 'listener_failed';

export type HeraldErrorCode = ServerErrorCode | ClientErrorCode | (string & {});

export class HeraldError extends Error {
  readonly code: HeraldErrorCode;
  /** `details` of a server error, when it has some. */
  readonly details?: unknown;

  constructor(code: HeraldErrorCode, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message);
    this.name = 'HeraldError';
    this.code = code;
    if (options.details !== undefined) this.details = options.details;
    if (options.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}
