// useConnectionState(): the provider's client connection state, re-rendering
// on every change.

import type { ConnectionState } from '@herald/client';
import { useCallback, useSyncExternalStore } from 'react';
import { useHerald } from './provider.js';

export function useConnectionState(): ConnectionState {
  const client = useHerald();
  const subscribe = useCallback((onChange: () => void) => client.on('state', onChange), [client]);
  const snapshot = () => client.state;
  return useSyncExternalStore(subscribe, snapshot, snapshot);
}
