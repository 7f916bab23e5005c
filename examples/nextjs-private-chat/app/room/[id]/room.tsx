'use client';
// The chat of one room, in the browser: one Herald connection (token from
// /api/token?room=<id>), the room's channel with its last messages, typing
// indicators (ephemeral chat.typing), who is online (presence), a countdown
// to the room's expiry, and a Destroy button. When the room ends (destroyed
// by either person, or expired) Herald sends the final chat.destroy event
// and then unsubscribes everyone with the reason: the page says so and goes
// home. A third person gets channel_full: "This room is full".
import type { HeraldError } from '@herald/client';
import { HeraldProvider, useConnectionState, useHerald, useRealtime } from '@herald/react';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { roomChannel, type RoomChannel } from '@/lib/rooms';
import { Countdown } from './countdown';
import { Online } from './online';

export interface RoomProps {
  room: string;
  name: string;
  wsUrl: string;
  /** when the room expires (Herald's clock, ms since the epoch); null when unknown */
  expiresAt: number | null;
  /** Date.now() of the Next.js server when it rendered the page */
  serverNow: number;
}

/** How long the "room destroyed/expired" notice stays before the page goes home. */
const LEAVE_AFTER_MS = 2500;
/** A typing indicator is sent at most this often while typing, and shown this long after the last one. */
const TYPING_EVERY_MS = 2000;
const TYPING_SHOWN_MS = 5000;

export function Room(props: RoomProps) {
  const { room } = props;
  const getToken = useCallback(async () => {
    const res = await fetch(`/api/token?room=${room}`, { cache: 'no-store' });
    // Throwing makes the client retry with backoff (a 5xx, the app restarting).
    if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
    return res.text();
  }, [room]);
  return (
    // offlineQueue: messages sent while the connection is down (Herald
    // restarting) wait and go out, in order, once it is back.
    <HeraldProvider url={props.wsUrl} getToken={getToken} offlineQueue={{ max: 100 }}>
      <RoomView {...props} />
    </HeraldProvider>
  );
}

interface Line {
  key: string;
  offset: number;
  kind: 'message' | 'created';
  who: string;
  mine: boolean;
  text: string;
}

type Ended = { reason: 'destroyed' | 'expired'; by: string | null };

function nameOf(info: unknown): string {
  const name = (info as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : 'someone';
}

function RoomView({ room, name, expiresAt, serverNow }: RoomProps) {
  const channel: RoomChannel = roomChannel(room);
  const herald = useHerald();
  const router = useRouter();
  const connection = useConnectionState();
  const [lines, setLines] = useState<Line[]>([]);
  const seen = useRef(new Set<number>());
  const [typing, setTyping] = useState<Record<string, { name: string; until: number }>>({});
  const [ended, setEnded] = useState<Ended | null>(null);
  const finalBy = useRef<string | null>(null);

  const { status, error } = useRealtime({
    channels: [channel],
    history: 200,
    onData: (ev) => {
      if (ev.event === 'chat.typing') {
        const user = ev.from?.user;
        if (!user || user === herald.user) return;
        setTyping((t) => ({ ...t, [user]: { name: nameOf(ev.from?.info), until: Date.now() + TYPING_SHOWN_MS } }));
        return;
      }
      if (ev.event === 'chat.destroy') {
        // Herald's final event has no `from` (and no offset); one a member
        // published themselves has a `from` and is not the end of anything.
        if (!ev.from) finalBy.current = ev.data.by ?? null;
        return;
      }
      if (ev.offset === undefined || seen.current.has(ev.offset)) return;
      seen.current.add(ev.offset);
      if (ev.event === 'room.created') {
        setLines((l) => [...l, { key: `o${ev.offset}`, offset: ev.offset!, kind: 'created', who: ev.data.by, mine: false, text: '' }]);
      } else if (ev.event === 'chat.message') {
        const user = ev.from?.user;
        const who = nameOf(ev.from?.info);
        setLines((l) => [...l, { key: `o${ev.offset}`, offset: ev.offset!, kind: 'message', who, mine: user === herald.user, text: ev.data.text }]);
        if (user) setTyping(({ [user]: _gone, ...rest }) => rest);
      }
    },
  });

  // The end of the room: after the final event, Herald unsubscribes every
  // member with the reason, which the SDK reports as the subscription's
  // error `destroyed` or `expired` (not subscribed again).
  const code = status === 'error' ? error?.code : undefined;
  const endReason = code === 'destroyed' ? 'destroyed' : code === 'expired' ? 'expired' : null;
  useEffect(() => {
    if (!endReason) return;
    setEnded({ reason: endReason, by: endReason === 'destroyed' ? finalBy.current : null });
  }, [endReason]);
  useEffect(() => {
    if (!ended) return undefined;
    herald.close();
    const timer = setTimeout(() => router.replace(`/?ended=${ended.reason}`), LEAVE_AFTER_MS);
    return () => clearTimeout(timer);
  }, [ended, herald, router]);

  // Typing indicators fade out by themselves.
  useEffect(() => {
    const timer = setInterval(() => {
      const now = Date.now();
      setTyping((t) => {
        const left = Object.entries(t).filter(([, v]) => v.until > now);
        return left.length === Object.keys(t).length ? t : Object.fromEntries(left);
      });
    }, 500);
    return () => clearInterval(timer);
  }, []);

  // Keep the newest message in view.
  const logRef = useRef<HTMLOListElement>(null);
  useEffect(() => {
    logRef.current?.lastElementChild?.scrollIntoView({ block: 'nearest' });
  }, [lines.length]);

  const shareUrl = typeof window === 'undefined' ? `/room/${room}` : `${window.location.origin}/room/${room}`;

  if (ended) {
    return (
      <div className="panel alert" role="alert" data-testid="room-ended">
        {ended.reason === 'destroyed'
          ? `Room destroyed${ended.by ? ` by ${ended.by}` : ''}.`
          : 'Room expired: its time is up.'}{' '}
        Taking you home…
      </div>
    );
  }
  if (status === 'error' && error?.code === 'channel_full') {
    return (
      <div className="panel alert" role="alert" data-testid="room-full">
        This room is full: it already has two people. <Link href="/">Create your own room</Link>.
      </div>
    );
  }

  const typingNames = Object.values(typing).map((t) => t.name);
  return (
    <>
      <div className="header">
        <h1>Private room</h1>
        <Countdown expiresAt={expiresAt} serverNow={serverNow} />
      </div>
      <div className="panel">
        <p className="muted">
          Share this link with one person: <span className="share" data-testid="share-url">{shareUrl}</span>
        </p>
        <div className="row">
          <span className="grow">
            You are <strong>{name}</strong>.{' '}
            <span role="status" aria-label="Connection" data-testid="connection">
              {status === 'subscribed' ? 'Connected' : status === 'error' ? 'Not connected' : connection === 'connected' ? 'Joining…' : 'Reconnecting…'}
            </span>
          </span>
          <DestroyButton room={room} />
        </div>
        {status === 'error' && error && <ErrorLine error={error} />}
        <Online channel={channel} me={herald.user} />
      </div>
      <div className="panel">
        <ol className="log" role="log" aria-label="Messages" ref={logRef}>
          {lines.map((line) =>
            line.kind === 'created' ? (
              <li key={line.key} className="system">
                {line.who} created the room.
              </li>
            ) : (
              <li key={line.key} data-testid="message">
                <span className="who">{line.mine ? 'You' : line.who}:</span>
                <span data-testid="message-text">{line.text}</span>
              </li>
            ),
          )}
        </ol>
        <p className="typing" aria-live="polite" data-testid="typing">
          {typingNames.length > 0 && `${typingNames.join(' and ')} ${typingNames.length > 1 ? 'are' : 'is'} typing…`}
        </p>
        <Composer channel={channel} />
      </div>
    </>
  );
}

function ErrorLine({ error }: { error: HeraldError }) {
  return (
    <p className="alert" role="alert">
      {error.code}: {error.message}
    </p>
  );
}

function Composer({ channel }: { channel: RoomChannel }) {
  const herald = useHerald();
  const [draft, setDraft] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const lastTyping = useRef(0);

  const onChange = (value: string) => {
    setDraft(value);
    const now = Date.now();
    if (value.trim() !== '' && now - lastTyping.current > TYPING_EVERY_MS && herald.state === 'connected') {
      lastTyping.current = now;
      herald.publish(channel, 'chat.typing', {}, { ephemeral: true }).catch(() => {});
    }
  };

  const send = (e: FormEvent) => {
    e.preventDefault();
    const text = draft.trim();
    if (!text) return;
    setDraft('');
    setProblem(null);
    lastTyping.current = 0;
    // Resolves once Herald stored it (the event itself arrives before the
    // ack); while disconnected it waits in the client's offline queue.
    herald.publish(channel, 'chat.message', { text }).catch((err: HeraldError) => {
      setProblem(`Not sent (${err.code}): ${err.message}`);
      setDraft((d) => (d === '' ? text : d));
    });
  };

  return (
    <form onSubmit={send}>
      <label htmlFor="message">Message</label>
      <div className="row">
        <input
          id="message"
          type="text"
          className="grow"
          value={draft}
          maxLength={2000}
          autoComplete="off"
          onChange={(e) => onChange(e.target.value)}
        />
        <button type="submit">Send</button>
      </div>
      {problem && (
        <p className="alert" role="alert">
          {problem}
        </p>
      )}
    </form>
  );
}

function DestroyButton({ room }: { room: string }) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const destroy = async () => {
    setBusy(true);
    setProblem(null);
    try {
      // The page leaves when Herald unsubscribes us with reason "destroyed",
      // exactly as it does for the other person.
      const res = await fetch(`/api/rooms/${room}/destroy`, { method: 'POST' });
      if (!res.ok) setProblem(`Could not destroy the room: ${((await res.json().catch(() => ({}))) as { error?: string }).error ?? res.status}`);
    } catch (e) {
      setProblem(`Could not destroy the room: ${String(e)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className="danger" onClick={destroy} disabled={busy}>
        Destroy room
      </button>
      {problem && (
        <p className="alert" role="alert">
          {problem}
        </p>
      )}
    </>
  );
}
