// Gives every browser a random `visitor` cookie (httpOnly) on its first
// request, also visible to that same request's page or route handler. It
// identifies the visitor without accounts; see lib/identity.ts for why the
// id Herald sees is derived from it and not the cookie itself.
import { NextResponse, type NextRequest } from 'next/server';

const VISITOR_COOKIE = 'visitor';

export function middleware(request: NextRequest) {
  if (request.cookies.get(VISITOR_COOKIE)?.value) return NextResponse.next();
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const visitor = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  request.cookies.set(VISITOR_COOKIE, visitor);
  const response = NextResponse.next({ request: { headers: request.headers } });
  response.cookies.set(VISITOR_COOKIE, visitor, {
    httpOnly: true,
    sameSite: 'lax',
    secure: request.nextUrl.protocol === 'https:',
    path: '/',
    maxAge: 365 * 24 * 3600,
  });
  return response;
}

export const config = {
  // Pages and route handlers; not Next.js' own files.
  matcher: ['/((?!_next/static|_next/image|favicon.ico).*)'],
};
