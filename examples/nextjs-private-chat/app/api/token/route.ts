// GET /api/token?room=<id>: the visitor's connection token for one room
// (text/plain, for @herald/react's getToken). `sub` is the visitor's user id
// (derived from the httpOnly visitor cookie, lib/identity.ts), `info` their
// name, and the caps grant subscribe, publish, history and presence on
// room:<id> only. Anyone with the room's link gets one: the link is the
// room's secret, and Herald admits at most two distinct users (max_users),
// answering channel_full to a third. The client calls this before every
// connect and again before the token expires.
import { roomToken } from '@/lib/herald';
import { currentVisitor, rememberName } from '@/lib/identity';
import { text } from '@/lib/http';
import { friendlyName } from '@/lib/names';
import { isRoomId } from '@/lib/rooms';

export async function GET(request: Request) {
  const room = new URL(request.url).searchParams.get('room');
  if (!isRoomId(room)) return text('room: not a room id', 400);
  const visitor = await currentVisitor();
  if (!visitor) return text('no visitor cookie', 401);
  let name = visitor.name;
  if (name === null) {
    name = friendlyName();
    await rememberName(name);
  }
  return text(roomToken(room, { userId: visitor.userId, name }));
}
