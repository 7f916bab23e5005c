// `@herald/server/http`: HeraldServer alone, without the token functions
// (which need node:crypto), for runtimes that only have fetch (edge
// functions, workers).
export { HeraldServer, DEFAULT_PUBLISH_RETRY } from './server.js';
export type { ChannelsOptions, ChannelsResult, HeraldServerOptions, PublishRetryOptions, ServerInfo } from './server.js';
export { HeraldError } from '@herald/client';
export type {
  AnySchema,
  DestroyOptions,
  DestroyResult,
  HeraldErrorCode,
  HeraldEvent,
  HistoryOptions,
  HistoryResult,
  PresenceMember,
  PresenceResult,
  PresenceStats,
  PublishOptions,
  PublishResult,
  SchemaShape,
} from '@herald/client';
