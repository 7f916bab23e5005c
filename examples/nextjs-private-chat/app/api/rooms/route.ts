// POST /api/rooms: creates a private room. Picks a random id, remembers the
// visitor's name (typed, or the one they had, or a random friendly one) and
// publishes the room's first event, `room.created`, over Herald's HTTP API:
// it starts the room's life (channel_ttl_ms counts from the first stored
// event) and marks the room as existing (the room page checks for it).
// JSON in ({name?}) gives JSON out ({id, url}); the home page's HTML form
// gets a 303 to the room (works without JavaScript).
import { HeraldError } from '@herald/server';
import { heraldServer } from '@/lib/herald';
import { currentVisitor, newRoomId, rememberName } from '@/lib/identity';
import { json, readFields, seeOther } from '@/lib/http';
import { cleanName, friendlyName } from '@/lib/names';
import { roomChannel } from '@/lib/rooms';

export async function POST(request: Request) {
  const { fields, form } = await readFields(request);
  const visitor = await currentVisitor();
  if (!visitor) return json({ error: 'no visitor cookie' }, 401);
  const typed = fields.name === undefined || fields.name === '' ? null : cleanName(fields.name);
  if (fields.name !== undefined && fields.name !== '' && typed === null) {
    return form ? seeOther('/?error=name') : json({ error: 'name: 1 to 32 characters' }, 400);
  }
  const name = typed ?? visitor.name ?? friendlyName();
  await rememberName(name);
  const id = newRoomId();
  try {
    await heraldServer().publish(roomChannel(id), 'room.created', { by: name });
  } catch (e) {
    if (!(e instanceof HeraldError)) throw e;
    console.error(`POST /api/rooms: publishing room.created failed: ${e.code} ${e.message}`);
    return form ? seeOther('/?error=herald') : json({ error: e.code }, 502);
  }
  return form ? seeOther(`/room/${id}`) : json({ id, url: `/room/${id}` }, 201);
}
