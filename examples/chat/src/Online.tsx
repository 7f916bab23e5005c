// Who is in the room, from the server's presence (the chat namespace has
// presence and join_leave on in herald.toml): one entry per connected tab,
// named by its token's info.name or user id, "guest" for anonymous tabs
// (the demo has no sign-in, so everyone is a guest unless a backend gives
// tokens), this tab marked "you"; and "Ana joined" / "Ana left" notices, only
// for a user's first / last tab and never for this tab itself. Hidden when
// the server does not answer presence (e.g. an older config without it).
import type { JoinInfo, LeaveInfo, PresenceMember } from '@herald/client';
import { useHerald, usePresence } from '@herald/react';
import { useCallback, useState } from 'react';

/** How many join/leave notices stay on screen. */
const MAX_NOTICES = 3;

/** A member's name: its token's `info.name`, else its user id, else "guest". */
export function memberName(m: PresenceMember): string {
  const info = m.info as { name?: unknown } | null | undefined;
  if (info && typeof info.name === 'string' && info.name !== '') return info.name;
  return m.user ?? 'guest';
}

interface Notice {
  id: number;
  text: string;
}

let nextNotice = 1;

export function Online({ channel }: { channel: string }) {
  const herald = useHerald();
  const [notices, setNotices] = useState<Notice[]>([]);
  const notify = useCallback((text: string) => {
    setNotices((list) => [...list, { id: nextNotice++, text }].slice(-MAX_NOTICES));
  }, []);
  const onJoin = useCallback(
    (m: JoinInfo) => {
      if (m.userJoined && m.client !== herald.clientId) notify(`${memberName(m)} joined`);
    },
    [herald, notify],
  );
  const onLeave = useCallback(
    (m: LeaveInfo) => {
      if (m.userLeft) notify(`${memberName(m)} left`);
    },
    [notify],
  );
  const { members, error, complete } = usePresence(channel, { onJoin, onLeave });
  if (error) return null;

  const me = herald.clientId;
  const shown = members
    .map((m) => ({ client: m.client, name: memberName(m), mine: m.client === me }))
    .sort((a, b) => Number(b.mine) - Number(a.mine) || a.name.localeCompare(b.name) || a.client.localeCompare(b.client));

  return (
    <section className="online" aria-label="Who is online">
      <h3 className="online-title">{complete ? `Online (${members.length})` : 'Online: many'}</h3>
      <ul className="online-list">
        {shown.map((m) => (
          <li key={m.client} className={m.mine ? 'online-member mine' : 'online-member'}>
            {m.name}
            {m.mine && <span className="online-you"> (you)</span>}
          </li>
        ))}
      </ul>
      <ul className="presence-notices" aria-label="Arrivals and departures" aria-live="polite">
        {notices.map((n) => (
          <li key={n.id}>{n.text}</li>
        ))}
      </ul>
    </section>
  );
}
