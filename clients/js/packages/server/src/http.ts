// `@herald/server/http`: HeraldServer alone, without the token functions
// (which need node:crypto), for runtimes that only have fetch (edge
// functions, workers).
export { HeraldServer } from './server.js';
export type { HeraldServerOptions } from './server.js';
export { HeraldError } from '@herald/client';
export type {
  AnySchema,
  HeraldErrorCode,
  HeraldEvent,
  HistoryOptions,
  HistoryResult,
  PublishOptions,
  PublishResult,
  SchemaShape,
} from '@herald/client';
