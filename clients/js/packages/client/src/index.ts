// Public entry point of @herald/client: the Herald client, Subscription,
// HeraldError, the backoff helper, the protocol types and the typed-events
// schema types shared with @herald/react and @herald/server.
export { Herald, Subscription, newIdempotencyKey, idempotencyKeyError, DEFAULT_OFFLINE_QUEUE, DEFAULT_PUBLISH_TIMEOUT_MS } from './client.js';
export type {
  ConnectedInfo,
  ConnectionState,
  HeraldEvents,
  HeraldOptions,
  SubscribeOptions,
  SubscribedInfo,
  SubscriptionEvents,
  TokenSource,
  UnsubscribedInfo,
} from './client.js';
export { HeraldError } from './errors.js';
export { SseSocket, sseUrlFor } from './sse-socket.js';
export type { EventSourceConstructor, EventSourceLike } from './sse-socket.js';
export type { ClientErrorCode, HeraldErrorCode, ServerErrorCode } from './errors.js';
export { backoffDelay, reconnectOptions, DEFAULT_RECONNECT } from './backoff.js';
export type { ReconnectOptions } from './backoff.js';
export type {
  AnySchema,
  EventData,
  EventMap,
  EventName,
  IfAllowed,
  PublishMap,
  ReceivedEvent,
  ReceivedMap,
  AnyRpc,
  RpcArgs,
  RpcMap,
  RpcMethod,
  RpcRequest,
  RpcResponse,
  RpcSignature,
  SchemaShape,
} from './schema.js';
export type {
  ChannelPosition,
  DestroyOptions,
  DestroyResult,
  EventOrigin,
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
  RecoveryFailedInfo,
  RpcOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
