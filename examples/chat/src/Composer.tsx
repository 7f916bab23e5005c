// The message box: sends a chat.message (through the room, which shows it
// as "sending…" until acknowledged), announces typing, and keeps the draft
// when the server rejects it, with the reason right under the box.
import { useId, useState, type FormEvent } from 'react';
import { publishErrorText } from './errors';
import { useAnnounceTyping } from './typing';

export function Composer({ channel, name, send: publish }: { channel: string; name: string; send: (text: string) => Promise<void> }) {
  const typing = useAnnounceTyping(channel, name);
  const [draft, setDraft] = useState('');
  const [error, setError] = useState('');
  const [sending, setSending] = useState(false);
  const errorId = useId();

  async function send(e: FormEvent) {
    e.preventDefault();
    const text = draft.trim();
    if (!text || sending) return;
    setSending(true);
    try {
      // No length check here on purpose: the server's schema is the one
      // authority, and its answer is shown as it comes.
      await publish(text);
      setDraft('');
      setError('');
      typing.sent();
    } catch (err) {
      setError(publishErrorText(err));
    } finally {
      setSending(false);
    }
  }

  return (
    <form className="composer" onSubmit={send}>
      <label htmlFor="message" className="visually-hidden">
        Message
      </label>
      <input
        id="message"
        type="text"
        autoComplete="off"
        placeholder="Write a message…"
        value={draft}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errorId : undefined}
        onChange={(e) => {
          setDraft(e.target.value);
          if (error) setError('');
          if (e.target.value) typing.announce();
        }}
      />
      <button type="submit" disabled={sending || !draft.trim()}>
        Send
      </button>
      {error && (
        <p id={errorId} className="composer-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
