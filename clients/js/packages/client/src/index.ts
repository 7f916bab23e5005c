// Public entry point of @herald/client: the Herald client, Subscription,
// HeraldError, the backoff helper and the protocol types.
export { Herald, Subscription } from './client.js';
export type { ConnectionState, HeraldEvents, HeraldOptions, SubscribeOptions, TokenSource } from './client.js';
export { HeraldError } from './errors.js';
export type { ClientErrorCode, HeraldErrorCode, ServerErrorCode } from './errors.js';
export { backoffDelay, reconnectOptions, DEFAULT_RECONNECT } from './backoff.js';
export type { ReconnectOptions } from './backoff.js';
export type {
  ChannelPosition,
  EventOrigin,
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
