// The app backend's side of Herald: the HTTP API client (an API key with
// the scopes publish, history, presence and destroy) and the connection
// tokens, both typed by the schema `herald typegen` generated from
// herald.toml (lib/herald-types.ts).
import { createConnectionToken, HeraldServer } from '@herald/server';
import { apiKey, heraldUrl, jwtSecret } from './env';
import type { HeraldSchema } from './herald-types';
import { roomChannel } from './rooms';

export function heraldServer(): HeraldServer<HeraldSchema> {
  return new HeraldServer<HeraldSchema>({ url: heraldUrl(), apiKey: apiKey(), timeoutMs: 5000 });
}

/** Lifetime of a connection token; the client fetches a new one before it expires (refresh, no reconnect). */
export const TOKEN_LIFETIME_S = 15 * 60;

/** A connection token for one room: who the visitor is, and what they may do there. */
export function roomToken(room: string, visitor: { userId: string; name: string }): string {
  return createConnectionToken(
    {
      sub: visitor.userId,
      info: { name: visitor.name },
      caps: { [roomChannel(room)]: ['subscribe', 'publish', 'history', 'presence'] },
      expiresIn: TOKEN_LIFETIME_S,
    },
    { secret: jwtSecret() },
  );
}

/**
 * The room's creation, when the room exists: its first event, `room.created`
 * at offset 1 (published by POST /api/rooms). Its `ts` is the start of the
 * room's life on Herald's clock (channel_ttl_ms counts from the first stored
 * event, and the sqlite engine keeps it across restarts).
 * - null: the channel has no event (never created, or destroyed or expired:
 *   both leave a new, empty epoch) or its first event is something else (a
 *   late publish that reached the channel after it ended);
 * - `ts: null`: the room exists but its first event is no longer held
 *   (history_size reached): the countdown cannot be shown.
 */
export async function roomCreation(room: string): Promise<{ ts: number | null } | null> {
  const page = await heraldServer().history(roomChannel(room), { after: 0, limit: 1 });
  const first = page.events[0];
  if (!first) return null;
  if (first.offset !== 1) return { ts: null };
  return first.event === 'room.created' ? { ts: first.ts } : null;
}
