// The connection indicator in the header: 'Connected', 'Reconnecting…' once
// a connection was lost (the client retries with backoff by itself), and
// 'Offline' when the browser has no network or the client was closed.
import type { ConnectionState } from '@herald/client';
import { useConnectionState } from '@herald/react';
import { useEffect, useState } from 'react';

type Shown = 'connected' | 'connecting' | 'reconnecting' | 'offline';

const LABEL: Record<Shown, string> = {
  connected: 'Connected',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

function useBrowserOnline(): boolean {
  const [online, setOnline] = useState(() => navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(navigator.onLine);
    window.addEventListener('online', on);
    window.addEventListener('offline', on);
    return () => {
      window.removeEventListener('online', on);
      window.removeEventListener('offline', on);
    };
  }, []);
  return online;
}

function shown(state: ConnectionState, wasConnected: boolean, online: boolean): Shown {
  if (state === 'connected') return 'connected';
  if (state === 'closed' || !online) return 'offline';
  return wasConnected ? 'reconnecting' : 'connecting';
}

export function ConnectionStatus() {
  const state = useConnectionState();
  const online = useBrowserOnline();
  const [wasConnected, setWasConnected] = useState(false);
  useEffect(() => {
    if (state === 'connected') setWasConnected(true);
  }, [state]);
  const s = shown(state, wasConnected, online);
  return (
    <p className={`status status-${s}`} role="status" aria-label="Connection">
      <span className="status-dot" aria-hidden="true" />
      {LABEL[s]}
    </p>
  );
}
