// Asks for the display name shown with this user's messages and typing.
import { useState, type FormEvent } from 'react';
import { MAX_NAME_LENGTH } from './identity';

export function NameForm({ initial, onDone }: { initial: string; onDone: (name: string) => void }) {
  const [name, setName] = useState(initial);
  function submit(e: FormEvent) {
    e.preventDefault();
    const n = name.trim();
    if (n) onDone(n);
  }
  return (
    <form className="card" onSubmit={submit}>
      <h2>Pick a name</h2>
      <p>Others in the room see it next to your messages.</p>
      <label htmlFor="name">Your name</label>
      <div className="row">
        <input
          id="name"
          type="text"
          autoComplete="nickname"
          maxLength={MAX_NAME_LENGTH}
          required
          autoFocus
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <button type="submit" disabled={!name.trim()}>
          Continue
        </button>
      </div>
    </form>
  );
}
