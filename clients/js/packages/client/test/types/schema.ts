// A hand-written HeraldSchema in the exact shape `herald typegen` prints (the
// contract in clients/js/README.md): `chat` is strict, `feed` also accepts
// unknown events, `secret.*` has write-only `token`, default channels are
// untyped; rpc has todos.add and todos.count. The type tests (typecheck.test.mjs) compile usage files against it.
export type Author = string;

export interface HeraldSchema {
  namespaces: {
    chat: {
      'chat.message': { text: string; author: Author; token: string; replyTo?: number | null };
      'chat.destroy': { reason?: string };
    };
    feed: {
      'feed.item': { title: string };
      [event: string]: unknown;
    };
    locked: never;
  };
  default: { [event: string]: unknown };
  receivedNamespaces: {
    chat: {
      'chat.message': { text: string; author: Author; replyTo?: number | null };
      'chat.destroy': { reason?: string };
    };
    feed: {
      'feed.item': { title: string };
      [event: string]: unknown;
    };
    locked: never;
  };
  receivedDefault: { [event: string]: unknown };
  rpc: {
    'todos.add': { request: { title: string }; response: { id: string; title: string } };
    'todos.count': { request: unknown; response: number };
    [method: string]: { request: unknown; response: unknown };
  };
}

/** A schema whose [defaults] forbid channels outside the configured namespaces. */
export interface StrictDefaultsSchema {
  namespaces: { chat: { 'chat.message': { text: string } } };
  default: never;
  receivedNamespaces: { chat: { 'chat.message': { text: string } } };
  receivedDefault: never;
}
