// usePresence(): who is in a channel, kept exact while the component is
// mounted. It holds the channel through the shared subscription of
// channels.ts (one per client and channel, with useRealtime), asks
// `presence` every time the channel is (re)subscribed, and applies the
// channel's join/leave on top of that reply.
//
// Ordering: the server's reply reflects every join/leave sent before it, and
// the client may process a join that follows the reply before the reply's
// promise settles. So the join/leave seen while a request is in flight are
// kept and replayed over the reply: each one sets its member present or
// absent, and the last one for a member is its current state whether it came
// before the reply (and is already in it) or after it. Nothing is counted
// twice and nothing is lost.

import type { HeraldError, JoinInfo, LeaveInfo, PresenceMember } from '@herald/client';
import { useEffect, useRef, useState } from 'react';
import { attach, type Listener } from './channels.js';
import { useHerald } from './provider.js';

export interface PresenceState {
  /** one per subscribed connection (a user with two tabs is two members); `[]` until known */
  members: PresenceMember[];
  /** the distinct `user` ids among the members (anonymous members have none) */
  users: string[];
  /** false over the namespace's `presence_max_members`: only counts are kept, `members` is `[]` */
  complete: boolean;
  /**
   * the subscription ended (`destroyed`, `expired`, `kicked`, `channel_full`,
   * `forbidden`, …: `members` is then `[]`), or the server refused `presence`
   * (e.g. `forbidden`: presence is not enabled on the namespace)
   */
  error: HeraldError | null;
  /** the member list of the current connection is not known yet (before the first reply, and after a drop until the next) */
  loading: boolean;
}

export interface UsePresenceOptions {
  /**
   * every `join` of the channel (the own connection's too); show "Ana
   * joined" when `userJoined` (her first tab). May be a new function on
   * every render.
   */
  onJoin?: (member: JoinInfo) => void;
  /** every `leave`; show "Ana left" when `userLeft` (her last tab) */
  onLeave?: (member: LeaveInfo) => void;
  /** the subscription token of a private channel (see useRealtime); may be a new function on every render */
  getToken?: (channel: string) => string | Promise<string>;
}

const INITIAL: PresenceState = { members: [], users: [], complete: true, error: null, loading: true };

type Change = ['join', JoinInfo] | ['leave', LeaveInfo];

function memberOf(m: PresenceMember): PresenceMember {
  const member: PresenceMember = { client: m.client };
  if (m.user !== undefined) member.user = m.user;
  if (m.info !== undefined) member.info = m.info;
  return member;
}

/**
 * Subscribes to `channel` (sharing the subscription with `useRealtime`) and
 * returns its members, kept up to date with `join` / `leave` and read again
 * after every reconnection. Needs `presence = true` on the namespace, and
 * `join_leave = true` for live updates.
 */
export function usePresence(channel: string, options: UsePresenceOptions = {}): PresenceState {
  const client = useHerald();
  const latest = useRef(options);
  latest.current = options;
  const [state, setState] = useState<PresenceState>(INITIAL);
  const withToken = options.getToken !== undefined;

  useEffect(() => {
    let members = new Map<string, PresenceMember>();
    let complete = true;
    let loading = true;
    let fetchError: HeraldError | null = null;
    /** join/leave seen while a `presence` request is in flight; null when none is */
    let inFlight: Change[] | null = null;
    let request = 0;
    let stopped = false;
    let listener: Listener | null = null;

    const apply = ([kind, m]: Change) => {
      if (kind === 'join') members.set(m.client, memberOf(m));
      else members.delete(m.client);
    };
    const publish = () => {
      if (stopped) return;
      const ended = listener?.error ?? null;
      const list = ended ? [] : [...members.values()];
      const users = [...new Set(list.flatMap((m) => (m.user === undefined ? [] : [m.user])))];
      setState({ members: list, users, complete, error: ended ?? fetchError, loading: ended ? false : loading });
    };
    const fetch = () => {
      const mine = ++request;
      inFlight = [];
      loading = true;
      client.presence(channel).then(
        (reply) => {
          if (stopped || mine !== request) return;
          members = new Map(reply.members.map((m) => [m.client, memberOf(m)]));
          complete = reply.complete;
          if (complete) for (const change of inFlight ?? []) apply(change);
          inFlight = null;
          loading = false;
          fetchError = null;
          publish();
        },
        (err: HeraldError) => {
          if (stopped || mine !== request) return;
          inFlight = null;
          // Dropped before the reply: asked again once resubscribed.
          if (err.code === 'disconnected' || err.code === 'closed') return;
          fetchError = err;
          loading = false;
          publish();
        },
      );
    };
    const changed = (change: Change) => {
      inFlight?.push(change);
      if (!complete) return; // the server sends none over presence_max_members; stale ones are ignored
      apply(change);
      publish();
    };

    listener = attach(client, channel, {
      events: [], // no event for this listener: presence only
      history: 0,
      onEvent: () => {},
      onRecoveryFailed: () => {},
      getToken: withToken
        ? (ch) => {
            const getToken = latest.current.getToken;
            if (!getToken) throw new Error(`usePresence: getToken was removed while subscribed to ${ch}`);
            return getToken(ch);
          }
        : null,
      onChange: () => {
        if (listener?.error) {
          // The subscription ended (destroyed, expired, kicked, refused): nobody is known to be there.
          members = new Map();
          inFlight = null;
          request++;
        } else if (!listener?.ready) {
          loading = true; // dropped: the list is stale until the next reply
        }
        publish();
      },
      onSubscribed: fetch,
      onJoin: (m) => {
        changed(['join', m]);
        latest.current.onJoin?.(m);
      },
      onLeave: (m) => {
        changed(['leave', m]);
        latest.current.onLeave?.(m);
      },
    });
    if (listener.error === null && listener.ready) fetch(); // the channel was live already (shared)
    publish();
    return () => {
      stopped = true;
      listener?.detach();
    };
  }, [client, channel, withToken]);

  return state;
}
