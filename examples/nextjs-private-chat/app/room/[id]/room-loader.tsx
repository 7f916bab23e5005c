'use client';
// Loads the chat in the browser only: the Herald client holds a WebSocket,
// and nothing of the chat can be rendered before it is connected anyway.
// (@herald/client's constructor also needs a global WebSocket, which Node
// before 22 does not have, so <HeraldProvider> cannot be server-rendered
// there.)
import dynamic from 'next/dynamic';
import type { RoomProps } from './room';

const Room = dynamic(() => import('./room').then((m) => m.Room), {
  ssr: false,
  loading: () => <p className="panel muted">Loading the room…</p>,
});

export function RoomLoader(props: RoomProps) {
  return <Room {...props} />;
}
