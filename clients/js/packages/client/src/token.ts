// Reading the claims of a JWT without verifying it, and when to refresh a
// token. The client decodes tokens ONLY to schedule work: when to send
// `refresh` / `sub_refresh` before `exp`, and which channels the server will
// subscribe by itself (`channels`). Nothing here is a security check: the
// server verifies every token. Pure functions, unit-tested directly.

/**
 * The payload of a compact JWS (`header.payload.signature`) as a JSON object,
 * or null when `token` is not one (an opaque token is fine: nothing is
 * scheduled from it). The signature is NOT verified.
 */
export function decodeTokenPayload(token: string): Record<string, unknown> | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const bytes = base64urlDecode(parts[1]!);
  if (bytes === null) return null;
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The `exp` claim (seconds since the Unix epoch) of a JWT, or null (none, or not a JWT). Not verified. */
export function tokenExpiry(token: string): number | null {
  const exp = decodeTokenPayload(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : null;
}

/** The `channels` claim of a connection token (the server subscribes them at connect), or []. Not verified. */
export function tokenChannels(token: string): string[] {
  const channels = decodeTokenPayload(token)?.channels;
  return Array.isArray(channels) ? channels.filter((c): c is string => typeof c === 'string') : [];
}

/** The longest delay setTimeout takes (a longer one fires at once). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * How long to wait before refreshing a token that expires in `remainingMs`:
 * at 85% of the remaining lifetime or 30 s before expiry, whichever is
 * sooner, but never before half of the remaining lifetime (so a short token
 * is not refreshed in a tight loop), and at most ~24.8 days (the timer
 * limit). A token already expired by the local clock (a skewed clock, or a
 * failed refresh) is retried after 1 s.
 */
export function refreshDelay(remainingMs: number): number {
  if (!(remainingMs > 0)) return 1000;
  const delay = Math.min(remainingMs * 0.85, remainingMs - 30_000);
  return Math.min(Math.round(Math.max(delay, remainingMs / 2)), MAX_TIMER_MS);
}

function base64urlDecode(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  let bin: string;
  try {
    bin = atob(b64);
  } catch {
    return null;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
