// How an app gives the hooks its typed-events schema, once, by declaration
// merging (no generic argument on every hook call):
//   declare module '@herald/react' { interface Register { schema: HeraldSchema } }
// and the types the hooks derive from it. Types only.

import type { AnySchema, EventName, ReceivedEvent, ReceivedMap, SchemaShape } from '@herald/client';

/** Augment with `schema: HeraldSchema` (from `herald typegen`) to type every hook. */
export interface Register {}

/** The registered schema, or AnySchema. */
export type RegisteredSchema = Register extends { schema: infer S extends SchemaShape } ? S : AnySchema;

/** Event names receivable on any of the channels `C` (a union of channel literals). */
export type RealtimeEventName<S extends SchemaShape, C extends string> = C extends string
  ? EventName<ReceivedMap<S, C>>
  : never;

/** An event of one of the channels `C`, restricted to the names `E`, discriminated by `event`. */
export type RealtimeEvent<S extends SchemaShape, C extends string, E extends string> = C extends string
  ? ReceivedEvent<S, C, E & EventName<ReceivedMap<S, C>>>
  : never;

/** The channels of `C` whose namespace allows no event (`never` maps): none may be subscribed. */
export type ForbiddenChannel<S extends SchemaShape, C extends string> = C extends string
  ? [ReceivedMap<S, C>] extends [never]
    ? C
    : never
  : never;
