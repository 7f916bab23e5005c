// /room/<id>: the room's shareable page. On the server: check the room exists
// (its first event, room.created, read over Herald's HTTP API), compute when
// it expires, and ask for a name if the visitor has none yet. The chat
// itself runs in the browser (./room-loader.tsx).
import { redirect } from 'next/navigation';
import { roomCreation } from '@/lib/herald';
import { heraldWsUrl, roomTtlMs } from '@/lib/env';
import { currentVisitor } from '@/lib/identity';
import { friendlyName, MAX_NAME_LENGTH } from '@/lib/names';
import { isRoomId } from '@/lib/rooms';
import { RoomLoader } from './room-loader';

export default async function RoomPage({
  params,
  searchParams,
}: {
  params: Promise<{ id: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { id } = await params;
  const { error } = await searchParams;
  if (!isRoomId(id)) redirect('/?ended=missing');
  const creation = await roomCreation(id);
  if (creation === null) redirect('/?ended=missing');
  const visitor = await currentVisitor();

  if (!visitor?.name) {
    return (
      <>
        <h1>Join a private chat</h1>
        {error === 'name' && (
          <p className="panel alert" role="alert">
            Names have 1 to {MAX_NAME_LENGTH} characters.
          </p>
        )}
        <form className="panel" method="post" action="/api/me">
          <input type="hidden" name="returnTo" value={`/room/${id}`} />
          <label htmlFor="name">Your name</label>
          <div className="row">
            <input id="name" name="name" type="text" className="grow" maxLength={MAX_NAME_LENGTH} required defaultValue={friendlyName()} />
            <button type="submit">Join</button>
          </div>
        </form>
      </>
    );
  }

  // The countdown: the room ends channel_ttl_ms after its first stored event
  // (Herald's rule), whose ts is Herald's clock. The browser counts down from
  // `expiresAt` corrected by the difference between its clock and this
  // server's (`serverNow`), so a wrong clock on the visitor's machine does
  // not matter. The end itself is Herald's chat.destroy {reason: "expired"}.
  const expiresAt = creation.ts === null ? null : creation.ts + roomTtlMs();
  return <RoomLoader room={id} name={visitor.name} wsUrl={heraldWsUrl()} expiresAt={expiresAt} serverNow={Date.now()} />;
}
