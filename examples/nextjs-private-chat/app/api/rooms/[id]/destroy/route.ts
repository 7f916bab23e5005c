// POST /api/rooms/<id>/destroy: a member of the room destroys it for both.
// Done here, through Herald's HTTP API (DELETE /api/channels/room:<id>,
// `destroy` of @herald/server), rather than by the browser's WebSocket
// `destroy` command, because:
// - only someone in the room may destroy it: anyone with the link gets a
//   token, including a third visitor Herald refused with channel_full, so a
//   `destroy` capability in the token would let them end the room; here the
//   backend first checks (presence, same call path) that the caller's user
//   id is subscribed to the room;
// - `by` in the final event is the name Herald shows for that member
//   (their token's info), set by the backend, not whatever a browser sends.
// Herald then sends every subscriber the final `chat.destroy {by}` event and
// `unsubscribed {reason: "destroyed"}`, and deletes the history.
import { HeraldError } from '@herald/server';
import { heraldServer } from '@/lib/herald';
import { currentVisitor } from '@/lib/identity';
import { json } from '@/lib/http';
import { isRoomId, roomChannel } from '@/lib/rooms';

export async function POST(_request: Request, { params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  if (!isRoomId(id)) return json({ error: 'not a room id' }, 400);
  const visitor = await currentVisitor();
  if (!visitor) return json({ error: 'no visitor cookie' }, 401);
  const herald = heraldServer();
  const channel = roomChannel(id);
  try {
    const { members } = await herald.presence(channel);
    const me = members.find((m) => m.user === visitor.userId);
    if (!me) return json({ error: 'you are not in this room' }, 403);
    const info = me.info as { name?: unknown } | undefined;
    const by = typeof info?.name === 'string' ? info.name : (visitor.name ?? 'someone');
    const { epoch } = await herald.destroy(channel, { event: 'chat.destroy', data: { by, reason: 'destroyed' } });
    return json({ destroyed: true, epoch });
  } catch (e) {
    if (!(e instanceof HeraldError)) throw e;
    console.error(`POST /api/rooms/${id}/destroy: ${e.code} ${e.message}`);
    return json({ error: e.code }, 502);
  }
}
