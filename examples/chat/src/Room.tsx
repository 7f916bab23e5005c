// One room: its history on joining, live messages and typing indicators
// over one subscription (or why the server refused it), who is online with
// join/leave notices (sharing that subscription), the notice after a
// reconnect (how many missed messages were recovered, or a reload of the
// history when they could not be), and the message box. App mounts one per
// room (keyed by it), so nothing carries over from the previous room.
import type { HeraldEvent, RecoveredInfo } from '@herald/client';
import { useHerald, useRealtime } from '@herald/react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { Composer } from './Composer';
import { Online } from './Online';
import { TAB_ID } from './identity';
import {
  HISTORY_LIMIT,
  MESSAGE_EVENT,
  TYPING_EVENT,
  historyMessages,
  mergeMessages,
  toMessage,
  toTyping,
  type ChatMessage,
} from './messages';
import { channelOf } from './route';
import { typingText, useTypers } from './typing';

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

function recoveredText(missed: number): string {
  if (missed === 0) return 'Reconnected, no messages missed.';
  return `Reconnected, ${missed} missed message${missed === 1 ? '' : 's'} recovered.`;
}

export function Room({ room, name }: { room: string; name: string }) {
  const herald = useHerald();
  const channel = channelOf(room);
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [notice, setNotice] = useState('');
  const { typers, seen, done } = useTypers();

  const onData = useCallback(
    (e: HeraldEvent) => {
      if (e.event === TYPING_EVENT) {
        const t = toTyping(e.data);
        if (t) seen(t);
        return;
      }
      const m = toMessage(e);
      if (!m) return;
      done(m.sender);
      setMessages((list) => mergeMessages(list, [m]));
    },
    [seen, done],
  );

  // The server could not replay what was missed (history trimmed, or a new
  // epoch): start again from the stored history.
  const onRecoveryFailed = useCallback(() => {
    setNotice('Reconnected, but some messages could not be recovered: reloading the room…');
    herald
      .history(channel, { limit: HISTORY_LIMIT })
      .then((h) => {
        setMessages(historyMessages(h.events));
        setNotice('Reconnected; the room was reloaded from its history.');
      })
      .catch(() => setNotice('Reconnected, but the room could not be reloaded: refresh the page.'));
  }, [herald, channel]);

  const { error: joinError } = useRealtime({
    channels: [channel],
    events: [MESSAGE_EVENT, TYPING_EVENT],
    history: HISTORY_LIMIT,
    onData,
    onRecoveryFailed,
  });

  useEffect(
    () =>
      herald.on('recovered', (info: RecoveredInfo) => {
        if (info.channel === channel) setNotice(recoveredText(info.missed));
      }),
    [herald, channel],
  );

  // Follow new messages, unless the reader scrolled up to read older ones.
  const listRef = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  useEffect(() => {
    const el = listRef.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages]);

  return (
    <section className="room" aria-labelledby="room-title">
      <h2 id="room-title" className="visually-hidden">
        Room {room}
      </h2>
      {joinError && (
        <p className="join-error" role="alert">
          Cannot join this room ({joinError.code}): {joinError.message}
        </p>
      )}
      {notice && (
        <p className="notice" role="status" aria-label="Reconnection">
          {notice}
          <button type="button" className="link" onClick={() => setNotice('')}>
            Dismiss
          </button>
        </p>
      )}
      <Online channel={channel} />
      <ol
        ref={listRef}
        className="messages"
        role="log"
        aria-label="Messages"
        aria-live="polite"
        onScroll={(e) => {
          const el = e.currentTarget;
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {messages.length === 0 && <li className="empty">No messages yet. Say hello!</li>}
        {messages.map((m) => (
          <li key={m.offset} className={m.sender === TAB_ID ? 'message mine' : 'message'}>
            <span className="message-meta">
              <strong className="message-name">{m.name}</strong>{' '}
              <time dateTime={new Date(m.ts).toISOString()}>{timeFormat.format(m.ts)}</time>
            </span>
            <span className="message-text" data-testid="message-text">
              {m.text}
            </span>
          </li>
        ))}
      </ol>
      <p className="typing" aria-live="polite">
        {typingText(typers)}
      </p>
      <Composer channel={channel} name={name} />
    </section>
  );
}
