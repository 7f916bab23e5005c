// Typed events: the compile-time contract between `herald typegen` (which
// prints a `HeraldSchema` interface) and the SDKs. Types only, no runtime
// code. @herald/react and @herald/server import these too, so that the three
// packages map a channel name to its events in exactly one way.

import type { HeraldEvent } from './types.js';

/** Events of one namespace: event name -> payload. */
export type EventMap = { [event: string]: unknown };

/**
 * What a schema must look like (`herald typegen` output fits it). Each map
 * may be `never`: publishing to / subscribing to such channels then fails to
 * type-check.
 */
export interface SchemaShape {
  /** what publishers send, per namespace */
  namespaces: object;
  /** what publishers send on channels with no ':' or an unconfigured namespace */
  default: object;
  /** what subscribers receive, per namespace (write-only properties removed) */
  receivedNamespaces: object;
  /** what subscribers receive on default channels */
  receivedDefault: object;
  /**
   * RPC methods (`proxy.rpc_schema`): method -> `{request, response}`.
   * Optional: without it any method takes and returns `unknown`.
   */
  rpc?: object;
}

/** The schema of an untyped client: any event, any payload, on any channel. */
export interface AnySchema {
  namespaces: {};
  default: EventMap;
  receivedNamespaces: {};
  receivedDefault: EventMap;
}

/** `NS[N]` when channel `C` is `N:...` and `N` is a namespace of `NS`, else `D`. */
type MapOf<NS, D, C extends string> = C extends `${infer N}:${string}` ? (N extends keyof NS ? NS[N] : D) : D;

/** The events a publisher may send on channel `C`. */
export type PublishMap<S extends SchemaShape, C extends string> = MapOf<S['namespaces'], S['default'], C>;

/** The events a subscriber receives on channel `C`. */
export type ReceivedMap<S extends SchemaShape, C extends string> = MapOf<
  S['receivedNamespaces'],
  S['receivedDefault'],
  C
>;

/** Event names of a map (`string` when the map has an index signature). */
export type EventName<M> = [M] extends [never] ? never : keyof M & string;

/** The payload of event `E` in map `M`. */
export type EventData<M, E extends string> = E extends keyof M ? M[E] : never;

/**
 * `T` when the channel's map allows events, else `never`. Applied to a
 * parameter after the channel (never to the channel itself: that would stop
 * TypeScript from inferring template literal channels like `chat:${id}`).
 */
export type IfAllowed<M, T> = [M] extends [never] ? never : T;

/**
 * A received event on channel `C`: a union discriminated by `event`, each
 * member with its own `data` type.
 */
export type ReceivedEvent<S extends SchemaShape, C extends string, E extends string = EventName<ReceivedMap<S, C>>> = {
  [K in E]: HeraldEvent<EventData<ReceivedMap<S, C>, K>, K, C>;
}[E];

/** The payload types of one RPC method: what `client.rpc` sends and what it resolves with. */
export interface RpcSignature {
  request: unknown;
  response: unknown;
}

/** RPC methods of an untyped client, and of methods a schema does not declare: any data, an `unknown` result. */
export type AnyRpc = { [method: string]: RpcSignature };

/** The RPC methods of schema `S` (`AnyRpc` when it declares none). */
export type RpcMap<S extends SchemaShape> = S extends { rpc: infer R } ? (R extends object ? R : AnyRpc) : AnyRpc;

/** Method names `client.rpc` accepts (`string` when undeclared methods are allowed, as the server allows them). */
export type RpcMethod<S extends SchemaShape> = keyof RpcMap<S> & string;

/** What method `M` takes (`unknown` for a method the schema does not declare). */
export type RpcRequest<S extends SchemaShape, M extends string> = M extends keyof RpcMap<S>
  ? RpcMap<S>[M] extends { request: infer Q }
    ? Q
    : unknown
  : unknown;

/** What method `M` resolves with (`unknown` for a method the schema does not declare). */
export type RpcResponse<S extends SchemaShape, M extends string> = M extends keyof RpcMap<S>
  ? RpcMap<S>[M] extends { response: infer R }
    ? R
    : unknown
  : unknown;

/** `client.rpc`'s arguments after the method: `data` may be left out only where any data is accepted. */
export type RpcArgs<Req, Opts> = unknown extends Req ? [data?: Req, options?: Opts] : [data: Req, options?: Opts];
