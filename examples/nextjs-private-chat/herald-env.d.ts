// Types every @herald/react hook with the schema `herald typegen` generated
// from herald.toml and schema/room.json (lib/herald-types.ts, `npm run typegen`).
import type { HeraldSchema } from './lib/herald-types';

declare module '@herald/react' {
  interface Register {
    schema: HeraldSchema;
  }
}
