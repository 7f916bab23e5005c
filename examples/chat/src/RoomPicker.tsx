// Joins a room, or creates one by naming it: rooms exist as soon as someone
// opens their address, which can be shared as a link.
import { useState, type FormEvent } from 'react';
import { roomHash, toRoomName } from './route';

const SUGGESTED = ['lobby', 'random', 'help'];

export function RoomPicker() {
  const [input, setInput] = useState('');
  const room = toRoomName(input);
  function submit(e: FormEvent) {
    e.preventDefault();
    if (room) window.location.hash = roomHash(room);
  }
  return (
    <div className="card">
      <form onSubmit={submit}>
        <h2>Join or create a room</h2>
        <label htmlFor="room">Room name</label>
        <div className="row">
          <input
            id="room"
            type="text"
            autoComplete="off"
            placeholder="lobby"
            autoFocus
            value={input}
            onChange={(e) => setInput(e.target.value)}
          />
          <button type="submit" disabled={!room}>
            Join
          </button>
        </div>
        {input && room !== input.trim() && (
          <p className="hint">{room ? `Opens room “${room}”.` : 'Use letters, digits, - or _.'}</p>
        )}
      </form>
      <nav aria-label="Suggested rooms">
        <ul className="suggested">
          {SUGGESTED.map((r) => (
            <li key={r}>
              <a href={roomHash(r)}>#{r}</a>
            </li>
          ))}
        </ul>
      </nav>
    </div>
  );
}
