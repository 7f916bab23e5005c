// One room: its history on joining, live messages and typing indicators
// over one subscription (or why the server refused it), who is online with
// join/leave notices (sharing that subscription), the notice after a
// reconnect (how many missed messages were recovered, or a reload of the
// history when they could not be), and the message box. App mounts one per
// room (keyed by it), so nothing carries over from the previous room.
import { newIdempotencyKey, type HeraldEvent, type RecoveredInfo } from '@herald/client';
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
  lastOffset,
  mergeMessages,
  shownMessages,
  toMessage,
  toTyping,
  type ChatMessage,
  type PendingMessage,
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
  // This tab's messages not yet seen as events: "sending…" until acknowledged.
  const [pending, setPending] = useState<PendingMessage[]>([]);
  // The messages as last rendered, read when sending.
  const messagesRef = useRef(messages);
  messagesRef.current = messages;
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
        // The offsets may have started again (a new epoch): hold back any
        // event of this tab until the pending messages are acknowledged.
        setPending((p) => p.map((m) => (m.offset === undefined ? { ...m, after: 0 } : m)));
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

  // Sends a message: shown at once as "sending…" (the client queues it while
  // reconnecting and sends it again with the same key after a drop, so the
  // server stores it once), replaced by its event once acknowledged (matched
  // by the ack's offset). Rejected: removed, and the error goes to the box.
  const send = useCallback(
    async (text: string) => {
      const key = newIdempotencyKey();
      setPending((p) => [...p, { key, name, text, ts: Date.now(), after: lastOffset(messagesRef.current) }]);
      try {
        const { offset } = await herald.publish(channel, MESSAGE_EVENT, { name, text, sender: TAB_ID }, { idempotencyKey: key });
        setPending((p) => p.map((m) => (m.key === key ? { ...m, offset } : m)));
      } catch (err) {
        setPending((p) => p.filter((m) => m.key !== key));
        throw err;
      }
    },
    [herald, channel, name],
  );

  // Pending messages acknowledged and whose event arrived are done (the
  // event usually comes first, so this runs on acks too).
  useEffect(() => {
    const offsets = new Set(messages.map((m) => m.offset));
    setPending((p) => {
      const left = p.filter((m) => m.offset === undefined || !offsets.has(m.offset));
      return left.length === p.length ? p : left;
    });
  }, [messages, pending]);

  const shown = shownMessages(messages, pending, TAB_ID);

  // Follow new messages, unless the reader scrolled up to read older ones.
  const listRef = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  useEffect(() => {
    const el = listRef.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [shown.length]);

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
        {shown.length === 0 && <li className="empty">No messages yet. Say hello!</li>}
        {shown.map((m) => (
          <li
            key={m.pending ? m.key : m.offset}
            className={m.sender === TAB_ID ? 'message mine' : 'message'}
            data-pending={m.pending && m.offset === undefined ? 'true' : undefined}
          >
            <span className="message-meta">
              <strong className="message-name">{m.name}</strong>{' '}
              {m.pending && m.offset === undefined ? (
                <span className="message-sending">sending…</span>
              ) : (
                <time dateTime={new Date(m.ts).toISOString()}>{timeFormat.format(m.ts)}</time>
              )}
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
      <Composer channel={channel} name={name} send={send} />
    </section>
  );
}
