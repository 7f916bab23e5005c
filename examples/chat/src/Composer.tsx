// The message box: sends a chat.message, announces typing, and keeps the
// draft when the server rejects it, with the reason right under the box.
import { useHerald } from '@herald/react';
import { useId, useState, type FormEvent } from 'react';
import { publishErrorText } from './errors';
import { TAB_ID } from './identity';
import { MESSAGE_EVENT } from './messages';
import { useAnnounceTyping } from './typing';

export function Composer({ channel, name }: { channel: string; name: string }) {
  const herald = useHerald();
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
      await herald.publish(channel, MESSAGE_EVENT, { name, text, sender: TAB_ID });
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
