// Must type-check: typed usage of @herald/react with the registered fixture schema.
import { HeraldProvider, useConnectionState, useHerald, usePresence, useRealtime, type RealtimeStatus } from '@herald/react';
import type { ConnectionState } from '@herald/client';
import './register.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(): T | undefined => undefined;

function Messages({ room }: { room: string }) {
  const herald = useHerald();
  const state: ConnectionState = useConnectionState();
  const { status, error } = useRealtime({
    channels: [`chat:${room}`],
    history: 50,
    onData: (e) => {
      if (e.event === 'chat.message') {
        assertType<Equal<typeof e.data, { text: string; author: string; replyTo?: number | null }>>();
      } else {
        assertType<Equal<typeof e.event, 'chat.destroy'>>();
      }
    },
    onRecoveryFailed: (info) => void info.previous,
    getToken: (channel) => {
      assertType<Equal<typeof channel, `chat:${string}`>>();
      return fetch(`/api/herald-token?channel=${encodeURIComponent(channel)}`).then((r) => r.text());
    },
  });
  const s: RealtimeStatus = status;
  const user: string | null = herald.user;
  void user;
  useRealtime({
    channels: ['chat:a', 'lobby'],
    events: ['chat.destroy'],
    onData: (e) => {
      assertType<Equal<typeof e.event, 'chat.destroy'>>();
      assertType<Equal<typeof e.channel, 'chat:a' | 'lobby'>>();
    },
  });
  const send = () => herald.publish(`chat:${room}`, 'chat.message', { text: 'hi', author: 'a', token: 't' });
  return (
    <button onClick={send} title={`${state} ${s} ${error?.code ?? ''}`}>
      send
    </button>
  );
}

export function SignedIn() {
  return (
    <HeraldProvider url="ws://localhost:8080/ws" getToken={() => fetch('/api/herald-token').then((r) => r.text())}>
      <Messages room="lobby" />
    </HeraldProvider>
  );
}

export function App() {
  return (
    <HeraldProvider url="ws://localhost:8080/ws" token={async () => 'tok'} reconnect={{ maxDelayMs: 5000 }}>
      <Messages room="lobby" />
    </HeraldProvider>
  );
}

export function Online({ room }: { room: string }) {
  const { members, users, complete, error, loading } = usePresence(`chat:${room}`, { getToken: async (ch) => `token-for-${ch}` });
  const names: string[] = members.map((m) => (m.info as { name?: string } | undefined)?.name ?? m.user ?? 'guest');
  const n: number = users.length;
  const why: string | undefined = error?.code;
  return <p title={`${complete} ${loading} ${why}`}>{names.join(', ') || n}</p>;
}
