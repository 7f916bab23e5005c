// useRealtime(): subscribes a component to channels of the provider's
// client for as long as it is mounted, calling onData for every event (its
// history first, if asked), resubscribing when `channels`, `events` or
// `history` change, and reporting a status. Callbacks (and `getToken`, the
// subscription token of private channels) are read at call time, so passing
// new functions on every render costs no resubscribe.

import type { HeraldError, RecoveryFailedInfo } from '@herald/client';
import { useEffect, useRef, useState } from 'react';
import { attach, type Listener } from './channels.js';
import { useHerald } from './provider.js';
import type { ForbiddenChannel, RealtimeEvent, RealtimeEventName, RegisteredSchema } from './register.js';

/**
 * - `connecting` / `disconnected` / `closed`: the connection's state;
 * - `subscribing`: connected, but not every channel is subscribed (and its history delivered) yet;
 * - `subscribed`: every channel is live;
 * - `error`: the server refused a channel (see `error`).
 */
export type RealtimeStatus = 'connecting' | 'subscribing' | 'subscribed' | 'disconnected' | 'closed' | 'error';

export interface UseRealtimeOptions<C extends string, E extends string> {
  channels: readonly C[];
  /** only these event names (default: all) */
  events?: readonly E[];
  /** every event, in order, without duplicates; ephemeral events have no offset */
  onData: (event: RealtimeEvent<RegisteredSchema, C, E>) => void;
  /** the last N stored events of each channel first (default 0) */
  history?: number;
  /** after a reconnect events may have been missed (e.g. history lost): refetch */
  onRecoveryFailed?: (info: RecoveryFailedInfo) => void;
  /**
   * subscription token of a private channel, from the app's backend (the
   * client's `getToken` of `subscribe`: called for every subscribe and
   * before the token expires); may be a new function on every render
   */
  getToken?: (channel: C) => string | Promise<string>;
}

export interface RealtimeResult {
  status: RealtimeStatus;
  error: HeraldError | null;
}

function readToken<C extends string>(getToken: ((channel: C) => string | Promise<string>) | undefined, channel: C): string | Promise<string> {
  if (!getToken) throw new Error(`useRealtime: getToken was removed while subscribed to ${channel}`);
  return getToken(channel);
}

export function useRealtime<
  C extends string,
  E extends RealtimeEventName<RegisteredSchema, C> = RealtimeEventName<RegisteredSchema, C>,
>(
  options: UseRealtimeOptions<C, E> &
    // A channel of a namespace that allows no event fails to type-check, naming the allowed ones.
    ([ForbiddenChannel<RegisteredSchema, C>] extends [never]
      ? unknown
      : { channels: readonly Exclude<C, ForbiddenChannel<RegisteredSchema, C>>[] }),
): RealtimeResult {
  const client = useHerald();
  const latest = useRef(options);
  latest.current = options;
  const [result, setResult] = useState<RealtimeResult>({ status: 'connecting', error: null });
  const channels: readonly string[] = options.channels;
  const key = JSON.stringify([channels, options.events ?? null, options.history ?? 0]);

  useEffect(() => {
    const [chans, events, history] = JSON.parse(key) as [string[], string[] | null, number];
    let listeners: Listener[] = [];
    const update = () => {
      const error = listeners.find((l) => l.error)?.error ?? null;
      let status: RealtimeStatus;
      if (error) status = 'error';
      else if (client.state !== 'connected') status = client.state;
      else status = listeners.every((l) => l.ready) ? 'subscribed' : 'subscribing';
      setResult((prev) => (prev.status === status && prev.error === error ? prev : { status, error }));
    };
    const offState = client.on('state', update);
    listeners = [...new Set(chans)].map((channel) =>
      attach(client, channel, {
        events,
        history,
        onEvent: (ev) => latest.current.onData(ev as RealtimeEvent<RegisteredSchema, C, E>),
        onRecoveryFailed: (info) => latest.current.onRecoveryFailed?.(info),
        getToken: options.getToken ? (ch) => readToken(latest.current.getToken, ch as C) : null,
        onChange: update,
      }),
    );
    update();
    return () => {
      offState();
      for (const l of listeners) l.detach();
    };
  }, [client, key]);

  return result;
}
