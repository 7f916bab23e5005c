// Public entry point of @herald/server: HeraldServer (the HTTP API), the
// token functions (connection and subscription tokens, node:crypto), and
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
