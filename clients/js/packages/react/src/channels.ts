// Shares one Subscription per client and channel among every hook that
// listens to it (the client allows one per channel), and gives each listener
// what it asked for on its own: its event names only, and its own last-N
// history, fetched once the channel is subscribed and merged with the live
// events that arrive meanwhile (in order, no duplicate by offset). Tracks
// whether each channel is subscribed on the current connection, tells each
// listener when it is (again), and passes on the channel's join/leave. No
// React here, so the merge logic stays plain.

import type { Herald, HeraldError, HeraldEvent, JoinInfo, LeaveInfo, RecoveryFailedInfo, Subscription } from '@herald/client';

export interface ListenerOptions {
  /** deliver only these event names; null: all */
  events: readonly string[] | null;
  /** the last N stored events first (0: none) */
  history: number;
  onEvent(event: HeraldEvent): void;
  onRecoveryFailed(info: RecoveryFailedInfo): void;
  /** the subscription token of the channel (private channels); null: none */
  getToken: ((channel: string) => string | Promise<string>) | null;
  /** the channel's subscribed/error state or the history loading changed */
  onChange(): void;
  /** the channel was (re)subscribed on the current connection (after a reconnect too) */
  onSubscribed?(): void;
  /** `join` / `leave` of the channel */
  onJoin?(member: JoinInfo): void;
  onLeave?(member: LeaveInfo): void;
}

/** One hook's hold on a channel. */
export interface Listener {
  readonly channel: string;
  /** subscribed on the current connection, and its history delivered */
  readonly ready: boolean;
  /** the server refused the subscription, or the history request failed */
  readonly error: HeraldError | null;
  detach(): void;
}

interface Entry {
  sub: Subscription<HeraldEvent>;
  listeners: Set<Attached>;
  live: boolean;
  error: HeraldError | null;
}

type Registry = Map<string, Entry>;
const registries = new WeakMap<Herald<any>, Registry>();

class Attached implements Listener {
  /** live events held back while the history loads; null once it is delivered */
  private buffer: HeraldEvent[] | null;
  private loading = false;
  private historyError: HeraldError | null = null;
  private readonly only: ReadonlySet<string> | null;

  constructor(
    private readonly client: Herald<any>,
    private readonly entry: Entry,
    readonly channel: string,
    private readonly options: ListenerOptions,
    private readonly registry: Registry,
  ) {
    this.only = options.events ? new Set(options.events) : null;
    this.buffer = options.history > 0 ? [] : null;
  }

  get ready(): boolean {
    return this.entry.live && this.buffer === null;
  }

  get error(): HeraldError | null {
    return this.entry.error ?? this.historyError;
  }

  receive(ev: HeraldEvent): void {
    if (this.buffer !== null) this.buffer.push(ev);
    else this.emit(ev);
  }

  /** Fetches the history once the channel is subscribed: everything up to the offset the channel is at now. */
  loadHistory(): void {
    if (this.buffer === null || this.loading || !this.entry.live) return;
    const upTo = this.entry.sub.offset;
    if (upTo === 0) {
      this.flush([]);
      return;
    }
    this.loading = true;
    this.client.history(this.channel, { limit: this.options.history, before: upTo + 1 }).then(
      (page) => {
        this.loading = false;
        if (this.entry.listeners.has(this)) this.flush(page.events);
      },
      (err: HeraldError) => {
        this.loading = false;
        if (!this.entry.listeners.has(this)) return;
        if (err.code === 'disconnected') return; // tried again once resubscribed
        this.historyError = err;
        this.flush([]);
      },
    );
  }

  private flush(history: HeraldEvent[]): void {
    const held = this.buffer ?? [];
    this.buffer = null;
    let last = 0;
    for (const ev of history) {
      last = Math.max(last, ev.offset ?? 0);
      this.emit(ev);
    }
    for (const ev of held) if (ev.offset === undefined || ev.offset > last) this.emit(ev);
    this.options.onChange();
  }

  private emit(ev: HeraldEvent): void {
    if (this.only === null || this.only.has(ev.event)) this.options.onEvent(ev);
  }

  recoveryFailed(info: RecoveryFailedInfo): void {
    this.options.onRecoveryFailed(info);
  }

  get getToken(): ((channel: string) => string | Promise<string>) | null {
    return this.options.getToken;
  }

  changed(): void {
    this.options.onChange();
  }

  subscribed(): void {
    this.options.onSubscribed?.();
  }

  joined(member: JoinInfo): void {
    this.options.onJoin?.(member);
  }

  left(member: LeaveInfo): void {
    this.options.onLeave?.(member);
  }

  detach(): void {
    if (!this.entry.listeners.delete(this)) return;
    if (this.entry.listeners.size > 0) return;
    this.entry.sub.unsubscribe();
    if (this.registry.get(this.channel) === this.entry) this.registry.delete(this.channel);
  }
}

function registryOf(client: Herald<any>): Registry {
  let registry = registries.get(client);
  if (registry) return registry;
  const created: Registry = new Map();
  registries.set(client, created);
  client.on('subscribed', ({ channel }) => {
    const entry = created.get(channel);
    if (!entry) return;
    entry.live = true;
    for (const l of [...entry.listeners]) {
      l.loadHistory();
      l.subscribed();
      l.changed();
    }
  });
  client.on('state', (state) => {
    if (state === 'connected') return;
    for (const entry of created.values()) {
      entry.live = false;
      for (const l of [...entry.listeners]) l.changed();
    }
  });
  return created;
}

/** Starts listening to `channel` on `client` (subscribing it if no one else does). */
export function attach(client: Herald<any>, channel: string, options: ListenerOptions): Listener {
  const registry = registryOf(client);
  let entry = registry.get(channel);
  if (!entry || entry.error) {
    const fresh: Entry = { sub: null!, listeners: new Set(), live: false, error: null };
    // The channel's token comes from the first of its listeners that has a getToken.
    const getToken = options.getToken
      ? (ch: string) => {
          for (const l of fresh.listeners) if (l.getToken) return l.getToken(ch);
          return options.getToken!(ch);
        }
      : undefined;
    fresh.sub = client.subscribe(channel, {
      getToken,
      onEvent: (ev) => {
        for (const l of [...fresh.listeners]) l.receive(ev);
      },
      onRecoveryFailed: (info) => {
        for (const l of [...fresh.listeners]) l.recoveryFailed(info);
      },
      onError: (err) => {
        fresh.error = err;
        for (const l of [...fresh.listeners]) l.changed();
      },
    });
    fresh.sub.on('join', (member) => {
      for (const l of [...fresh.listeners]) l.joined(member);
    });
    fresh.sub.on('leave', (member) => {
      for (const l of [...fresh.listeners]) l.left(member);
    });
    entry = fresh;
    registry.set(channel, entry);
  }
  const listener = new Attached(client, entry, channel, options, registry);
  entry.listeners.add(listener);
  listener.loadHistory();
  return listener;
}
