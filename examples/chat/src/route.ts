// The page's address is its state: '#/room/<room>' shows that room, anything
// else the room picker. Hash routing because `herald serve` only serves
// files: every room has to load the same index.html.
import { useEffect, useState } from 'react';

/** A room name: the part of the channel name after 'chat:', short and readable. */
const ROOM = /^[a-z0-9][a-z0-9_-]{0,39}$/;

export function roomFromHash(hash: string): string | null {
  const m = /^#\/room\/([^/?#]+)$/.exec(hash);
  if (!m) return null;
  let room: string;
  try {
    room = decodeURIComponent(m[1]);
  } catch {
    return null;
  }
  return ROOM.test(room) ? room : null;
}

export function roomHash(room: string): string {
  return `#/room/${room}`;
}

/** 'My Room!' becomes 'my-room'; '' when nothing usable is left. */
export function toRoomName(input: string): string {
  return input
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+/, '')
    .slice(0, 40)
    .replace(/-+$/, '');
}

export function channelOf(room: string): string {
  return `chat:${room}`;
}

/** The room in the address bar, following back/forward and edited links. */
export function useRoom(): string | null {
  const [room, setRoom] = useState(() => roomFromHash(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoom(roomFromHash(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return room;
}
