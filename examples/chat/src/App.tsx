// The page: a header (room, connection status, who you are), then the name
// form, the room picker or the room, depending on what is known.
import { useState } from 'react';
import { ConnectionStatus } from './ConnectionStatus';
import { NameForm } from './NameForm';
import { Room } from './Room';
import { RoomPicker } from './RoomPicker';
import { useName } from './identity';
import { useRoom } from './route';

export function App() {
  const [name, setName] = useName();
  const [editingName, setEditingName] = useState(false);
  const room = useRoom();

  let body;
  if (!name || editingName) {
    body = (
      <NameForm
        initial={name}
        onDone={(n) => {
          setName(n);
          setEditingName(false);
        }}
      />
    );
  } else if (!room) {
    body = <RoomPicker />;
  } else {
    body = <Room key={room} room={room} name={name} />;
  }

  return (
    <div className="app">
      <header className="header">
        <h1>
          <a href="#/">Herald chat</a>
          {room && <span className="room-name">#{room}</span>}
        </h1>
        <ConnectionStatus />
        {name && !editingName && (
          <p className="me">
            <span className="visually-hidden">Chatting as </span>
            {name}{' '}
            <button type="button" className="link" onClick={() => setEditingName(true)}>
              Change name
            </button>
          </p>
        )}
      </header>
      <main className="main">{body}</main>
    </div>
  );
}
