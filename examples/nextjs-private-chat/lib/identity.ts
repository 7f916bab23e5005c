// Who the visitor is, without accounts: middleware.ts gives every browser a
// random `visitor` cookie (httpOnly) on its first request. That value is a
// bearer secret, so it is never shown to anyone: the user id Herald sees
// (the token's `sub`, hence `from.user` and presence's `user`, which the
// other person in the room receives) is an HMAC of it. Knowing someone's
// user id therefore does not let you mint a token as them. The name
// (`name` cookie, httpOnly too) is only what others see (`info.name`).
import { createHmac, randomBytes } from 'node:crypto';
import { cookies } from 'next/headers';
import { jwtSecret } from './env';
import { cleanName } from './names';

export const VISITOR_COOKIE = 'visitor';
export const NAME_COOKIE = 'name';
const YEAR_S = 365 * 24 * 3600;

export interface Visitor {
  /** Herald's user id (token `sub`): public, derived from the secret cookie */
  userId: string;
  /** the name others see, or null when the visitor has not chosen one yet */
  name: string | null;
}

export function userIdOf(visitorCookie: string): string {
  return createHmac('sha256', jwtSecret()).update(`visitor:${visitorCookie}`).digest('base64url').slice(0, 22);
}

/** The visitor of the current request, or null without a visitor cookie (middleware sets it for pages and /api). */
export async function currentVisitor(): Promise<Visitor | null> {
  const jar = await cookies();
  const visitor = jar.get(VISITOR_COOKIE)?.value;
  if (!visitor) return null;
  return { userId: userIdOf(visitor), name: cleanName(jar.get(NAME_COOKIE)?.value) };
}

/** Sets the name cookie (route handlers only). */
export async function rememberName(name: string): Promise<void> {
  (await cookies()).set(NAME_COOKIE, name, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: YEAR_S });
}

/** A new room id: 12 characters of a 32-letter alphabet (60 random bits). */
export function newRoomId(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  return [...randomBytes(12)].map((b) => alphabet[b & 31]!).join('');
}
