// POST /api/me {name, returnTo?}: sets the name others see (the `name`
// cookie, used in the next connection token). The room page's join form
// posts here and comes back to the room (303); JSON callers get {name}.
import { rememberName } from '@/lib/identity';
import { json, readFields, seeOther } from '@/lib/http';
import { cleanName } from '@/lib/names';

export async function POST(request: Request) {
  const { fields, form } = await readFields(request);
  const name = cleanName(fields.name);
  const back = typeof fields.returnTo === 'string' && /^\/room\/[a-z0-9]+$/.test(fields.returnTo) ? fields.returnTo : '/';
  if (name === null) return form ? seeOther(`${back}?error=name`) : json({ error: 'name: 1 to 32 characters' }, 400);
  await rememberName(name);
  return form ? seeOther(back) : json({ name });
}
