// Registers the client package's fixture schema (a `herald typegen`-shaped
// HeraldSchema) for the hooks, as an app does once.
import type { HeraldSchema } from '../../../client/test/types/schema.js';

declare module '@herald/react' {
  interface Register {
    schema: HeraldSchema;
  }
}
