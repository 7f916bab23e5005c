// Tokens for Herald's authentication, signed by the application backend:
// connection tokens (sent by @herald/client in `connect`: sub, exp, info,
// caps, channels) and subscription tokens (sent in `subscribe` for one
// channel: sub, channel, exp, caps). Compact JWS (RFC 7515) with node:crypto
// only: HMAC (HS256/384/512) with a shared secret, RSA PKCS#1 v1.5
// (RS256/384/512), RSA-PSS (PS256/384/512, salt length = hash length) and
// ECDSA (ES256/384/512, the signature as raw r||s per RFC 7518 section 3.4,
// not DER) with a private key. Node only (Next.js route handlers on the
// default Node.js runtime); for runtimes without node:crypto, import
// HeraldServer from `@herald/server/http`.

import { constants, createHmac, createPrivateKey, KeyObject, sign } from 'node:crypto';

/** Operations a token may grant on a channel (the server's capabilities). */
export type TokenOperation = 'subscribe' | 'publish' | 'history' | 'presence' | 'destroy';

export type HmacAlgorithm = 'HS256' | 'HS384' | 'HS512';
export type AsymmetricAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';

interface SigningOptionsBase {
  /** `kid` of the header: which of the server's keys verifies the token */
  kid?: string;
  /** `iss` claim, when the server checks the issuer */
  issuer?: string;
  /** `aud` claim, when the server checks the audience */
  audience?: string | readonly string[];
}

/** A shared secret (the server's `[[auth.keys]] secret`), at least 32 bytes; HS256 by default. */
export interface SecretSigningOptions extends SigningOptionsBase {
  secret: string | Uint8Array;
  algorithm?: HmacAlgorithm;
  privateKey?: never;
}

/** A private key (PEM, or a KeyObject) whose public key the server holds. */
export interface PrivateKeySigningOptions extends SigningOptionsBase {
  privateKey: string | KeyObject;
  algorithm: AsymmetricAlgorithm;
  secret?: never;
}

export type SigningOptions = SecretSigningOptions | PrivateKeySigningOptions;

export interface ConnectionTokenClaims {
  /** the user id: `connected.user`, `from.user` of the events the connection publishes */
  sub: string;
  /** any JSON value about the user (e.g. `{name}`): `from.info` of the events the connection publishes */
  info?: unknown;
  /** channel pattern -> operations, e.g. `{'chat:*': ['subscribe', 'publish'], 'dm:42': ['subscribe']}` */
  caps?: Readonly<Record<string, readonly TokenOperation[]>>;
  /** channels the server subscribes the connection to at connect (server-side subscriptions) */
  channels?: readonly string[];
  /** lifetime in seconds (default 3600) */
  expiresIn?: number;
}

export interface SubscriptionTokenClaims {
  /** must equal the connection's user (its connection token's `sub`) */
  sub: string;
  /** the one channel the token is for */
  channel: string;
  /** operations granted on the channel (default: what the server grants a subscription token) */
  caps?: readonly TokenOperation[];
  /** lifetime in seconds (default 3600) */
  expiresIn?: number;
}

const DEFAULT_EXPIRES_IN = 3600;
const MIN_SECRET_BYTES = 32;
const MIN_RSA_BITS = 2048;
const OPERATIONS: ReadonlySet<string> = new Set<TokenOperation>(['subscribe', 'publish', 'history', 'presence', 'destroy']);
const HASH = { '256': 'sha256', '384': 'sha384', '512': 'sha512' } as const;
const CURVE: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/** Signs a connection token for `@herald/client`'s `token` option. */
export function createConnectionToken(claims: ConnectionTokenClaims, key: SigningOptions): string {
  if (!claims || typeof claims !== 'object') throw new TypeError('createConnectionToken: claims are required');
  const payload: Record<string, unknown> = { sub: requireString(claims.sub, 'sub') };
  if (claims.info !== undefined) {
    if (JSON.stringify(claims.info) === undefined) throw new TypeError('createConnectionToken: info must be a JSON value');
    payload.info = claims.info;
  }
  if (claims.caps !== undefined) {
    if (claims.caps === null || typeof claims.caps !== 'object' || Array.isArray(claims.caps)) {
      throw new TypeError('createConnectionToken: caps must map channel patterns to operations');
    }
    const caps: Record<string, TokenOperation[]> = {};
    for (const [pattern, ops] of Object.entries(claims.caps)) caps[requireString(pattern, 'caps pattern')] = operations(ops, `caps['${pattern}']`);
    payload.caps = caps;
  }
  if (claims.channels !== undefined) {
    if (!Array.isArray(claims.channels)) throw new TypeError('createConnectionToken: channels must be an array of channel names');
    payload.channels = claims.channels.map((c) => requireString(c, 'channels[]'));
  }
  return signToken(payload, claims.expiresIn, key);
}

/** Signs a subscription token for `getToken` of `@herald/client`'s `subscribe`. */
export function createSubscriptionToken(claims: SubscriptionTokenClaims, key: SigningOptions): string {
  if (!claims || typeof claims !== 'object') throw new TypeError('createSubscriptionToken: claims are required');
  const payload: Record<string, unknown> = {
    sub: requireString(claims.sub, 'sub'),
    channel: requireString(claims.channel, 'channel'),
  };
  if (claims.caps !== undefined) payload.caps = operations(claims.caps, 'caps');
  return signToken(payload, claims.expiresIn, key);
}

function signToken(claims: Record<string, unknown>, expiresIn: number | undefined, key: SigningOptions): string {
  if (!key || typeof key !== 'object') throw new TypeError('token signing: key options ({secret} or {privateKey, algorithm}) are required');
  const lifetime = expiresIn ?? DEFAULT_EXPIRES_IN;
  if (typeof lifetime !== 'number' || !Number.isFinite(lifetime) || lifetime <= 0) {
    throw new RangeError('token signing: expiresIn must be a positive number of seconds');
  }
  const iat = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { ...claims, iat, exp: iat + Math.ceil(lifetime) };
  if (key.issuer !== undefined) payload.iss = requireString(key.issuer, 'issuer');
  if (key.audience !== undefined) {
    payload.aud = typeof key.audience === 'string' ? key.audience : key.audience.map((a) => requireString(a, 'audience'));
  }
  const signer = makeSigner(key);
  const header: Record<string, unknown> = { alg: signer.alg, typ: 'JWT' };
  if (key.kid !== undefined) header.kid = requireString(key.kid, 'kid');
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${signer.sign(Buffer.from(input, 'ascii')).toString('base64url')}`;
}

interface Signer {
  alg: string;
  sign(data: Buffer): Buffer;
}

function makeSigner(key: SigningOptions): Signer {
  if ('secret' in key && key.secret !== undefined) {
    if ('privateKey' in key && key.privateKey !== undefined) throw new TypeError('token signing: give either secret or privateKey, not both');
    const alg = key.algorithm ?? 'HS256';
    if (alg !== 'HS256' && alg !== 'HS384' && alg !== 'HS512') throw new TypeError(`token signing: a secret signs HS256, HS384 or HS512, not ${String(alg)}`);
    const secret = typeof key.secret === 'string' ? Buffer.from(key.secret, 'utf8') : Buffer.from(key.secret);
    if (secret.length < MIN_SECRET_BYTES) {
      throw new RangeError(`token signing: the secret must be at least ${MIN_SECRET_BYTES} bytes (it has ${secret.length}); the server refuses shorter ones`);
    }
    const hash = HASH[alg.slice(2) as keyof typeof HASH];
    return { alg, sign: (data) => createHmac(hash, secret).update(data).digest() };
  }
  if (!('privateKey' in key) || key.privateKey === undefined) throw new TypeError('token signing: secret or privateKey is required');
  const alg = key.algorithm;
  const family = typeof alg === 'string' ? alg.slice(0, 2) : '';
  const hash = HASH[(typeof alg === 'string' ? alg.slice(2) : '') as keyof typeof HASH];
  if (!hash || (family !== 'RS' && family !== 'PS' && family !== 'ES')) {
    throw new TypeError(`token signing: algorithm must be one of RS256..512, PS256..512, ES256..512 with a privateKey (got ${String(alg)})`);
  }
  const pk = privateKeyObject(key.privateKey);
  const type = pk.asymmetricKeyType;
  const details = pk.asymmetricKeyDetails ?? {};
  if (family === 'ES') {
    if (type !== 'ec' || details.namedCurve !== CURVE[alg]) {
      throw new TypeError(`token signing: ${alg} needs an EC key on curve ${CURVE[alg]} (got ${type}${details.namedCurve ? ` ${details.namedCurve}` : ''})`);
    }
    return { alg, sign: (data) => sign(hash, data, { key: pk, dsaEncoding: 'ieee-p1363' }) };
  }
  if (type !== 'rsa' && !(family === 'PS' && type === 'rsa-pss')) throw new TypeError(`token signing: ${alg} needs an RSA key (got ${type})`);
  if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new RangeError(`token signing: the RSA key must have at least ${MIN_RSA_BITS} bits`);
  if (family === 'RS') return { alg, sign: (data) => sign(hash, data, { key: pk, padding: constants.RSA_PKCS1_PADDING }) };
  return {
    alg,
    sign: (data) => sign(hash, data, { key: pk, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }),
  };
}

function privateKeyObject(key: string | KeyObject): KeyObject {
  if (key instanceof KeyObject) {
    if (key.type !== 'private') throw new TypeError(`token signing: privateKey must be a private key (got a ${key.type} key)`);
    return key;
  }
  if (typeof key !== 'string') throw new TypeError('token signing: privateKey must be a PEM string or a KeyObject');
  try {
    return createPrivateKey(key);
  } catch (e) {
    // Never echo the key material.
    throw new TypeError(`token signing: privateKey is not a private key in PEM (${(e as { code?: string }).code ?? 'unreadable'})`);
  }
}

function operations(ops: unknown, what: string): TokenOperation[] {
  if (!Array.isArray(ops)) throw new TypeError(`token: ${what} must be an array of operations`);
  for (const op of ops) {
    if (typeof op !== 'string' || !OPERATIONS.has(op)) {
      throw new TypeError(`token: ${what}: unknown operation ${JSON.stringify(op)} (subscribe, publish, history, presence, destroy)`);
    }
  }
  return [...ops] as TokenOperation[];
}

function requireString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw new TypeError(`token: ${what} must be a non-empty string`);
  return v;
}

function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
