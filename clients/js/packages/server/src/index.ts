// Public entry point of @herald/server: HeraldServer, and the shared error
// and schema types re-exported from @herald/client for convenience.
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
