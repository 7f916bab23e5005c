// The example's settings, read from the environment at request time (never
// inlined at build time: one `next build` runs against any Herald). See
// README.md, "Environment".

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see examples/nextjs-private-chat/README.md)`);
  return value;
}

/** Herald's HTTP base URL, as the Next.js server reaches it. */
export function heraldUrl(): string {
  return (process.env.HERALD_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
}

/** Herald's WebSocket URL, as the browser reaches it (default: HERALD_URL with ws: and /ws). */
export function heraldWsUrl(): string {
  if (process.env.HERALD_WS_URL) return process.env.HERALD_WS_URL;
  return `${heraldUrl().replace(/^http/, 'ws')}/ws`;
}

/** The secret of Herald's [[auth.keys]] (secret_env = "HERALD_JWT_SECRET"): signs connection tokens. */
export function jwtSecret(): string {
  return required('HERALD_JWT_SECRET');
}

/** A key of Herald's [[api.keys]] (key_env = "HERALD_BACKEND_KEY") with the scopes publish, history, presence, destroy. */
export function apiKey(): string {
  return required('HERALD_BACKEND_KEY');
}

/** How long a room lives: must equal channel_ttl_ms of [namespaces.room] in herald.toml. */
export function roomTtlMs(): number {
  const ms = Number(process.env.ROOM_TTL_MS || 600_000);
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new Error('ROOM_TTL_MS must be a positive number of milliseconds');
  return ms;
}
