// Small helpers of the route handlers: reading a JSON or HTML-form body, and
// answers that are never cached.

/** The fields of a JSON object or an HTML form body ({} when it is neither). */
export async function readFields(request: Request): Promise<{ fields: Record<string, unknown>; form: boolean }> {
  const type = request.headers.get('content-type') ?? '';
  try {
    if (type.includes('application/x-www-form-urlencoded') || type.includes('multipart/form-data')) {
      return { fields: Object.fromEntries((await request.formData()).entries()), form: true };
    }
    const body: unknown = await request.json();
    return { fields: body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {}, form: false };
  } catch {
    return { fields: {}, form: false };
  }
}

const NO_STORE = { 'cache-control': 'no-store' };

export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: NO_STORE });
}

export function text(body: string, status = 200): Response {
  return new Response(body, { status, headers: { ...NO_STORE, 'content-type': 'text/plain; charset=utf-8' } });
}

/**
 * 303 See Other: after a form post, the browser GETs `path` on the same
 * origin. A relative Location (RFC 9110): `request.url` names the host
 * Next.js listens on (e.g. localhost), not necessarily the one the browser
 * used, whose cookies would then not be sent.
 */
export function seeOther(path: string): Response {
  if (!path.startsWith('/') || path.startsWith('//')) throw new Error(`seeOther: not a path of this site: ${path}`);
  return new Response(null, { status: 303, headers: { ...NO_STORE, location: path } });
}
