// Backend hooks (docs/backend-hooks.md): helpers to write the app's handlers
// of Herald's connect, refresh, subscribe, publish and rpc hooks as Web
// `Request -> Response` functions, the shape of a Next.js route handler
// (`export const POST = heraldHook.connect(async (hook) => ...)`). Each
// checks the request (POST, the shared-secret header of `[proxy]
// static_headers` compared in constant time, a JSON body with the hook's
// fields), calls the app's function with the typed body, and turns its
// typed result (`allow`, `deny`, `disconnect`) into the JSON Herald reads.
// Uses node:crypto (timingSafeEqual, sha256); touches nothing else.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { AnySchema, RpcMap, RpcRequest, RpcResponse, SchemaShape, ServerErrorCode } from '@herald/client';

/** Operations `caps` may grant on channels matching a pattern (the server's capabilities). */
export type HookCapability = 'subscribe' | 'publish' | 'history' | 'presence' | 'destroy';

/** The request and the answer of the connect hook. */
export interface ConnectHookRequest {
  /** the connection's id */
  client: string;
  /** `websocket` */
  transport: string;
  /** `json` */
  protocol: string;
  /** the upgrade request's headers named in `forward_headers` (lower-case), and `cookie` with only the `forward_cookies` */
  headers: Record<string, string>;
  /** the client's `connect.data` (`null` when absent; `@herald/client`: the `data` option) */
  data: unknown;
  /** the client's address */
  ip: string;
}

export interface ConnectHookResult {
  /** the connection's user (a token's `sub`); absent or empty: anonymous (then caps, channels and expire_at are ignored) */
  user?: string;
  /** shown in presence and in `from.info` of the connection's publishes */
  info?: unknown;
  /** operations granted per channel pattern, e.g. `{"room:*": ["subscribe", "publish"]}` */
  caps?: Record<string, readonly HookCapability[]>;
  /** channels subscribed at once (they skip the subscribe hook) */
  channels?: readonly string[];
  /** when the connection's authorisation ends (seconds since the Unix epoch); the refresh hook may extend it */
  expire_at?: number;
  /** sent to the client in `connected.data` (`@herald/client`: `connectionData`) */
  data?: unknown;
}

export interface RefreshHookRequest {
  client: string;
  user: string;
  /** the current expiry (seconds since the Unix epoch) */
  expire_at: number;
}

export interface RefreshHookResult {
  /** the new expiry (seconds since the Unix epoch); required */
  expire_at: number;
  /** replaces the connection's info for channels subscribed from then on */
  info?: unknown;
}

export interface SubscribeHookRequest {
  client: string;
  /** `""` for an anonymous connection */
  user: string;
  channel: string;
  /** the subscribe command's `data` (`null` when absent) */
  data: unknown;
}

export interface SubscribeHookResult {
  /** replaces the connection's info in this channel's presence and join/leave messages */
  info?: unknown;
  /** sent to the client in `subscribed.data` */
  data?: unknown;
}

export interface PublishHookRequest {
  client: string;
  user: string;
  channel: string;
  event: string;
  data: unknown;
}

export interface PublishHookResult {
  /** publish this instead of the data sent (then checked against the namespace's size and schema) */
  data?: unknown;
}

/** The rpc hook's request (`heraldHook.rpc` hands `data` to the method's function, typed by the schema). */
export interface RpcHookRequest {
  client: string;
  /** `""` for an anonymous connection */
  user: string;
  method: string;
  /** the call's data (`null` when absent), already checked against the method's request schema by Herald */
  data: unknown;
}

export interface RpcHookResult<T = unknown> {
  /** sent back to the client as `rpc_result.data` (`null` when absent) */
  data?: T;
}

/** `{result}`: the hook allows, with its fields. */
export interface Allow<R> {
  result: R;
}
/** `{error}`: the client gets this error (an rpc, publish or subscribe is refused; a connect is refused and closed). */
export interface Deny {
  error: { code: ServerErrorCode | (string & {}); message: string };
}
/** `{disconnect}`: the connection is closed with this code (4000-4999) and reason. */
export interface Disconnect {
  disconnect: { code: number; reason: string };
}
/** What a hook function returns: an answer for Herald, or a Response sent as is. */
export type HookAnswer<R> = Allow<R> | Deny | Disconnect | Response;

/** Marks the answers made by deny() and disconnect(), so that an rpc method can return them instead of its data. */
const ANSWER = Symbol('herald.hookAnswer');
function branded<T extends object>(answer: T): T {
  Object.defineProperty(answer, ANSWER, { value: true }); // not enumerable: not in the JSON
  return answer;
}
function isAnswer(v: unknown): v is Deny | Disconnect {
  return typeof v === 'object' && v !== null && (v as { [ANSWER]?: boolean })[ANSWER] === true;
}

/** Allow, with the hook's result fields (connect: `{user, info, caps, channels, expire_at, data}`; publish: `{data}` to replace it; rpc: `{data}`). */
export function allow(): Allow<{}>;
export function allow<R>(result: R): Allow<R>;
export function allow(result: unknown = {}): Allow<unknown> {
  return { result };
}

/**
 * Refuse with one of Herald's error codes (protocol.md section 8:
 * `unauthorized`, `forbidden`, `bad_request`, `validation_failed`,
 * `rate_limited`, ...; Herald sends `forbidden` for another code). The
 * message (up to 1024 bytes) reaches the client.
 */
export function deny(code: ServerErrorCode | (string & {}), message = ''): Deny {
  return branded({ error: { code, message } });
}

/** Close the connection with `code` (4000-4999; a RangeError otherwise) and `reason`. */
export function disconnect(code = 4003, reason = ''): Disconnect {
  if (!Number.isInteger(code) || code < 4000 || code > 4999) throw new RangeError(`disconnect: code ${code} is not in 4000-4999`);
  return branded({ disconnect: { code, reason } });
}

/** How a hook request proves it comes from Herald. */
export interface HookOptions {
  /**
   * the shared secret of `[proxy] static_headers` (e.g. `"X-Herald-Secret:
   * <secret>"`); default `process.env.HERALD_HOOK_SECRET`, read at each
   * request. `false` turns the check off (a backend only Herald can reach).
   * With neither, every request is refused with 500 (fail closed).
   */
  secret?: string | false;
  /** the header that carries it (default `x-herald-secret`) */
  header?: string;
}

/** `(request) => Response`: a Next.js route handler (`export const POST = ...`). */
export type HookHandler = (request: Request) => Promise<Response>;

/** A refused hook request: `response` says why to the caller (never the secret). */
export class HookRequestError extends Error {
  readonly response: Response;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HookRequestError';
    this.response = new Response(message, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  }
}

/** The fields each hook's body must have, with their JSON types. */
const REQUIRED: Record<HookName, Record<string, 'string' | 'number' | 'object'>> = {
  connect: { client: 'string', headers: 'object' },
  refresh: { client: 'string', user: 'string', expire_at: 'number' },
  subscribe: { client: 'string', user: 'string', channel: 'string' },
  publish: { client: 'string', user: 'string', channel: 'string', event: 'string' },
  rpc: { client: 'string', user: 'string', method: 'string' },
};

export type HookName = 'connect' | 'refresh' | 'subscribe' | 'publish' | 'rpc';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Whether `got` is the secret, in time independent of where they differ (both hashed first: lengths leak nothing either). */
function secretMatches(got: string | null, secret: string): boolean {
  const ok = timingSafeEqual(digest(got ?? ''), digest(secret));
  return ok && got !== null;
}

/**
 * Checks a hook request and returns its body: POST (else 405), the secret
 * header (else 403), a JSON object with the hook's fields (else 400).
 * Throws HookRequestError, whose `response` is the answer to send.
 */
export async function readHookRequest(request: Request, hook: 'connect', options?: HookOptions): Promise<ConnectHookRequest>;
export async function readHookRequest(request: Request, hook: 'refresh', options?: HookOptions): Promise<RefreshHookRequest>;
export async function readHookRequest(request: Request, hook: 'subscribe', options?: HookOptions): Promise<SubscribeHookRequest>;
export async function readHookRequest(request: Request, hook: 'publish', options?: HookOptions): Promise<PublishHookRequest>;
export async function readHookRequest(request: Request, hook: 'rpc', options?: HookOptions): Promise<RpcHookRequest>;
export async function readHookRequest(request: Request, hook: HookName, options: HookOptions = {}): Promise<unknown> {
  if (request.method !== 'POST') throw new HookRequestError(405, `herald ${hook} hook: POST expected`);
  const secret = options.secret === undefined ? (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.HERALD_HOOK_SECRET : options.secret;
  if (secret === undefined || secret === '') {
    throw new HookRequestError(500, `herald ${hook} hook: no secret configured (set HERALD_HOOK_SECRET, or pass {secret}; {secret: false} turns the check off)`);
  }
  if (secret !== false && !secretMatches(request.headers.get(options.header ?? 'x-herald-secret'), secret)) {
    throw new HookRequestError(403, `herald ${hook} hook: missing or wrong secret header`);
  }
  let body: unknown;
  try {
    body = JSON.parse(await request.text());
  } catch {
    throw new HookRequestError(400, `herald ${hook} hook: the body is not JSON`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HookRequestError(400, `herald ${hook} hook: the body is not a JSON object`);
  const fields = body as Record<string, unknown>;
  for (const [name, type] of Object.entries(REQUIRED[hook])) {
    const v = fields[name];
    if (typeof v !== type || v === null) throw new HookRequestError(400, `herald ${hook} hook: ${name} must be a ${type}`);
  }
  if (!('data' in fields) && hook !== 'refresh') fields.data = null;
  return fields;
}

/** The value of cookie `name` in a Cookie header (the connect hook's `headers.cookie`), or undefined. */
export function hookCookie(cookieHeader: string | undefined, name: string): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

function handler<Req, R>(hook: HookName, fn: (body: Req, request: Request) => HookAnswer<R> | Promise<HookAnswer<R>>, options?: HookOptions): HookHandler {
  return async (request: Request) => {
    let body: Req;
    try {
      body = (await readHookRequest(request, hook as 'connect', options)) as Req;
    } catch (e) {
      if (e instanceof HookRequestError) return e.response;
      throw e;
    }
    let answer: HookAnswer<R>;
    try {
      answer = await fn(body, request);
    } catch (e) {
      // Herald gives the client `unavailable` for a non-2xx answer; the cause is the app's to log.
      console.error(`herald ${hook} hook: the handler threw`, e);
      return new Response(`herald ${hook} hook: the handler failed`, { status: 500 });
    }
    if (answer instanceof Response) return answer;
    if (!answer || typeof answer !== 'object' || !('result' in answer || 'error' in answer || 'disconnect' in answer)) {
      console.error(`herald ${hook} hook: the handler returned neither allow(), deny() nor disconnect()`);
      return new Response(`herald ${hook} hook: no answer`, { status: 500 });
    }
    // Not Response.json(): absent from the first releases of Node 18.
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } });
  };
}

/**
 * Route handlers for Herald's hooks, e.g. in `app/api/herald/connect/route.ts`:
 *
 * ```ts
 * export const POST = heraldHook.connect(async (hook) =>
 *   user ? allow({ user: user.id, data: { theme: user.theme } }) : deny('unauthorized', 'log in first'));
 * ```
 *
 * The function gets the checked body and the Request, and returns `allow(...)`,
 * `deny(code, message)`, `disconnect(code, reason)` or a Response. A request
 * that fails the checks (readHookRequest) never reaches it.
 */
export const heraldHook = {
  connect: (fn: (hook: ConnectHookRequest, request: Request) => HookAnswer<ConnectHookResult> | Promise<HookAnswer<ConnectHookResult>>, options?: HookOptions): HookHandler =>
    handler('connect', fn, options),
  refresh: (fn: (hook: RefreshHookRequest, request: Request) => HookAnswer<RefreshHookResult> | Promise<HookAnswer<RefreshHookResult>>, options?: HookOptions): HookHandler =>
    handler('refresh', fn, options),
  subscribe: (fn: (hook: SubscribeHookRequest, request: Request) => HookAnswer<SubscribeHookResult> | Promise<HookAnswer<SubscribeHookResult>>, options?: HookOptions): HookHandler =>
    handler('subscribe', fn, options),
  publish: (fn: (hook: PublishHookRequest, request: Request) => HookAnswer<PublishHookResult> | Promise<HookAnswer<PublishHookResult>>, options?: HookOptions): HookHandler =>
    handler('publish', fn, options),
  /**
   * The rpc hook, one function per method: each gets the call's `data` and
   * returns the result's `data` (or `deny(...)`, `disconnect(...)`, a
   * Response). A method it does not name is refused with `bad_request`.
   * With `heraldHook.rpc<HeraldSchema>({...})` (`herald typegen`) each
   * declared method's data and result are typed: a wrong result fails tsc.
   */
  rpc: <S extends SchemaShape = AnySchema>(methods: RpcMethods<S>, options?: HookOptions): HookHandler =>
    handler<RpcHookRequest, RpcHookResult>(
      'rpc',
      async (hook, request) => {
        const fn = Object.prototype.hasOwnProperty.call(methods, hook.method)
          ? (methods as Record<string, RpcMethodFn<AnySchema, string> | undefined>)[hook.method]
          : undefined;
        if (typeof fn !== 'function') return deny('bad_request', `unknown rpc method ${hook.method}`);
        const out = await fn(hook.data, hook, request);
        if (out instanceof Response || isAnswer(out)) return out;
        return { result: { data: out === undefined ? null : out } };
      },
      options,
    ),
};

/** One rpc method of `heraldHook.rpc`: the call's data in, the result's data (or a refusal) out. */
export type RpcMethodFn<S extends SchemaShape, M extends string> = (
  data: RpcRequest<S, M>,
  hook: RpcHookRequest,
  request: Request,
) => RpcResponse<S, M> | Deny | Disconnect | Response | Promise<RpcResponse<S, M> | Deny | Disconnect | Response>;

/**
 * The methods `heraldHook.rpc` answers: the schema's declared ones typed;
 * any other name (the index signature) takes `any` data, so that it does not
 * clash with the declared ones.
 */
export type RpcMethods<S extends SchemaShape> = {
  [M in keyof RpcMap<S>]?: string extends M ? UndeclaredRpcMethodFn : number extends M ? UndeclaredRpcMethodFn : RpcMethodFn<S, M & string>;
};

/** A method the schema does not declare: any data in, any result out. */
export type UndeclaredRpcMethodFn = (data: any, hook: RpcHookRequest, request: Request) => unknown;
