// Typing indicators over ephemeral events: never stored, so a tab announces
// itself again while the user keeps typing, and others forget it a few
// seconds after the last announcement or as soon as its message arrives.
import { useHerald } from '@herald/react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { TAB_ID } from './identity';
import { TYPING_EVENT, type Typing } from './messages';

/** At most one announcement per this long while typing. */
const ANNOUNCE_EVERY_MS = 2000;
/** Forget a typer this long after its last announcement (a little over two announcements). */
const EXPIRE_AFTER_MS = 5000;

/**
 * Sends this tab's typing announcements to `channel`: `announce` on every
 * keystroke, `sent` once a message went out (the others forget the typer
 * when it arrives, so the next keystroke must announce again at once).
 */
export function useAnnounceTyping(channel: string, name: string): { announce: () => void; sent: () => void } {
  const herald = useHerald();
  const last = useRef(0);
  const announce = useCallback(() => {
    const now = Date.now();
    if (now - last.current < ANNOUNCE_EVERY_MS || herald.state !== 'connected') return;
    last.current = now;
    // Best effort: a lost typing event only delays the indicator.
    herald.publish(channel, TYPING_EVENT, { name, sender: TAB_ID }, { ephemeral: true }).catch(() => {});
  }, [herald, channel, name]);
  const sent = useCallback(() => {
    last.current = 0;
  }, []);
  return { announce, sent };
}

/** Who else is typing: `seen` for each typing event, `done` when a sender's message arrives. */
export function useTypers(): { typers: string[]; seen: (t: Typing) => void; done: (sender?: string) => void } {
  const [until, setUntil] = useState<Map<string, { name: string; until: number }>>(new Map());

  const seen = useCallback((t: Typing) => {
    if (t.sender === TAB_ID) return;
    setUntil((m) => new Map(m).set(t.sender, { name: t.name, until: Date.now() + EXPIRE_AFTER_MS }));
  }, []);

  const done = useCallback((sender?: string) => {
    if (sender === undefined) return;
    setUntil((m) => {
      if (!m.has(sender)) return m;
      const next = new Map(m);
      next.delete(sender);
      return next;
    });
  }, []);

  // One timer, for the next expiry.
  useEffect(() => {
    if (until.size === 0) return;
    const next = Math.min(...[...until.values()].map((v) => v.until));
    const timer = setTimeout(
      () => {
        const now = Date.now();
        setUntil((m) => new Map([...m].filter(([, v]) => v.until > now)));
      },
      Math.max(0, next - Date.now()) + 10,
    );
    return () => clearTimeout(timer);
  }, [until]);

  const typers = [...new Set([...until.values()].map((v) => v.name))].sort();
  return { typers, seen, done };
}

/** 'Alice is typing…', 'Alice and Bob are typing…', 'Alice, Bob and 2 others are typing…'. */
export function typingText(typers: string[]): string {
  if (typers.length === 0) return '';
  if (typers.length === 1) return `${typers[0]} is typing…`;
  if (typers.length === 2) return `${typers[0]} and ${typers[1]} are typing…`;
  return `${typers[0]}, ${typers[1]} and ${typers.length - 2} other${typers.length > 3 ? 's' : ''} are typing…`;
}
