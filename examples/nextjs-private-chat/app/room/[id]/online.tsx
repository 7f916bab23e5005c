'use client';
// Who is in the room now: @herald/react's usePresence (Herald's presence
// reply, kept current by join/leave messages). One line per person, also
// when someone has the room open in two tabs.
import { usePresence } from '@herald/react';
import type { RoomChannel } from '@/lib/rooms';

export function Online({ channel, me }: { channel: RoomChannel; me: string | null }) {
  const { members } = usePresence(channel);
  const people = new Map<string, string>();
  for (const m of members) {
    if (!m.user || people.has(m.user)) continue;
    const name = (m.info as { name?: unknown } | undefined)?.name;
    people.set(m.user, typeof name === 'string' ? name : 'someone');
  }
  return (
    <div>
      <span className="muted">Online:</span>
      <ul className="online" aria-label="Online" data-testid="online">
        {[...people].map(([user, name]) => (
          <li key={user}>{user === me ? `${name} (you)` : name}</li>
        ))}
      </ul>
    </div>
  );
}
