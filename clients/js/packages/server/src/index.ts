// Public entry point of @herald/server: HeraldServer (the HTTP API), the
// token functions (connection and subscription tokens, node:crypto), the
// backend hook helpers (hooks.ts: route handlers for Herald's connect,
// refresh, subscribe, publish and rpc hooks, node:crypto), and
// the shared error and schema types re-exported from @herald/client for
// convenience. `@herald/server/http` is the same without the tokens.
export * from './http.js';
export { createConnectionToken, createSubscriptionToken } from './tokens.js';
export type {
  AsymmetricAlgorithm,
  ConnectionTokenClaims,
  HmacAlgorithm,
  PrivateKeySigningOptions,
  SecretSigningOptions,
  SigningOptions,
  SubscriptionTokenClaims,
  TokenOperation,
} from './tokens.js';
export {
  allow,
  deny,
  disconnect,
  heraldHook,
  hookCookie,
  readHookRequest,
  HookRequestError,
} from './hooks.js';
export type {
  Allow,
  ConnectHookRequest,
  ConnectHookResult,
  Deny,
  Disconnect,
  HookAnswer,
  HookCapability,
  HookHandler,
  HookName,
  HookOptions,
  PublishHookRequest,
  PublishHookResult,
  RefreshHookRequest,
  RefreshHookResult,
  RpcHookRequest,
  RpcHookResult,
  RpcMethodFn,
  RpcMethods,
  SubscribeHookRequest,
  SubscribeHookResult,
  UndeclaredRpcMethodFn,
} from './hooks.js';
