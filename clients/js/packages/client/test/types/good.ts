// Must type-check: typed usage of @herald/client with the fixture schema.
import {
  Herald,
  HeraldError,
  type ConnectedInfo,
  type HeraldEvent,
  type JoinInfo,
  type PresenceMember,
  type PresenceStats,
  type SchemaShape,
} from '@herald/client';
import type { HeraldSchema, StrictDefaultsSchema } from './schema.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(): T | undefined => undefined;

const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });

async function publishing(): Promise<number | undefined> {
  const r = await h.publish('chat:lobby', 'chat.message', { text: 'hi', author: 'ann', token: 't' });
  await h.publish('chat:lobby', 'chat.message', { text: 'hi', author: 'ann', token: 't', replyTo: null });
  await h.publish('chat:room:42', 'chat.destroy', {});
  await h.publish('feed:news', 'feed.item', { title: 't' });
  await h.publish('feed:news', 'anything.else', 42); // feed is not strict
  await h.publish('lobby', 'whatever', { any: 'thing' }); // no namespace: [defaults]
  await h.publish('other:room', 'whatever', [1, 2]); // unconfigured namespace: [defaults]
  await h.publish('chat:lobby', 'chat.destroy', { reason: 'x' }, { ephemeral: true });
  return r.offset;
}

function subscribing(): void {
  h.subscribe('chat:lobby', {
    history: 10,
    onEvent: (e) => {
      assertType<Equal<typeof e.channel, 'chat:lobby'>>();
      if (e.event === 'chat.message') {
        assertType<Equal<typeof e.data, { text: string; author: string; replyTo?: number | null }>>();
        const text: string = e.data.text;
        void text;
      } else {
        assertType<Equal<typeof e.event, 'chat.destroy'>>();
        const reason: string | undefined = e.data.reason;
        void reason;
      }
    },
    onRecoveryFailed: (info) => void info.previous.offset,
  });
  const sub = h.subscribe('chat:other', {
    events: ['chat.destroy'],
    onEvent: (e) => {
      assertType<Equal<typeof e.event, 'chat.destroy'>>();
    },
  });
  sub.unsubscribe();
  h.subscribe('lobby', {
    onEvent: (e) => {
      assertType<Equal<typeof e.event, string>>();
      assertType<Equal<typeof e.data, unknown>>();
    },
  });
}

async function reading(): Promise<void> {
  const page = await h.history('chat:lobby', { limit: 10 });
  for (const e of page.events) if (e.event === 'chat.message') void e.data.author;
}

// Untyped client: everything goes.
const any = new Herald({ url: 'ws://x/ws' });
void any.publish('x', 'y', { z: 1 });
any.subscribe('x', { onEvent: (e: HeraldEvent) => void e.data });

// A template channel keeps its namespace; a plain string falls back to [defaults].
function dynamic(room: string, channel: string): void {
  void h.publish(`chat:${room}`, 'chat.destroy', { reason: 'r' });
  h.subscribe(`chat:${room}`, {
    onEvent: (e) => assertType<Equal<typeof e.event, 'chat.message' | 'chat.destroy'>>(),
  });
  void h.publish(channel, 'e', 1);
}

// Namespaced channels still work when [defaults] forbids the rest.
const strict = new Herald<StrictDefaultsSchema>({ url: 'ws://x/ws' });
void strict.publish('chat:a', 'chat.message', { text: 'x' });

// Authentication: token sources, getToken, the user, the terminal error, retryAfterMs.
function auth(): void {
  const a = new Herald({ url: 'ws://x/ws', token: () => fetch('/api/herald-token').then((r) => r.text()) });
  const b = new Herald({ url: 'ws://x/ws', token: 'static' });
  a.on('connected', (info: ConnectedInfo) => {
    const user: string | undefined = info.user;
    const expires: number | undefined = info.expires;
    void [user, expires];
  });
  const user: string | null = a.user;
  const why: string | undefined = a.closeError?.code;
  h.subscribe(`chat:${user}`, {
    getToken: (channel) => fetch(`/api/herald-token?channel=${channel}`).then((r) => r.text()),
    onEvent: (e) => void e.from?.info,
    onError: (e) => void (e.code === 'kicked' || e.code === 'token_failed'),
  });
  a.on('unsubscribed', ({ channel, reason }) => void [channel.length, reason.length]);
  a.on('error', (e: HeraldError) => {
    if (e.code === 'rate_limited') {
      const wait: number | undefined = e.retryAfterMs;
      void wait;
    }
  });
  void [b, why];
}

// Presence: members, stats, join/leave of a subscription, destroy with a typed final event.
async function presence(room: string): Promise<void> {
  const { members, complete } = await h.presence(`chat:${room}`);
  const m: PresenceMember | undefined = members[0];
  const who: string | undefined = m?.user ?? m?.client;
  const stats: PresenceStats = await h.presenceStats('chat:lobby');
  const users: number | undefined = stats.users;
  void [complete, who, users, stats.clients];
  const sub = h.subscribe('chat:lobby', { onEvent() {}, onError: (e) => void (e.code === 'destroyed' || e.code === 'channel_full') });
  const off = sub.on('join', (j: JoinInfo) => void (j.userJoined && j.info));
  sub.on('leave', ({ client, user, userLeft }) => void [client.length, user?.length, userLeft]);
  off();
  const { epoch } = await h.destroy('chat:lobby', { event: 'chat.destroy', data: { reason: 'closed' } });
  await h.destroy(`chat:${room}`);
  await h.destroy('lobby', { event: 'anything', data: [1] });
  await h.destroy('locked:x'); // no final event: allowed on every namespace
  void epoch.length;
}

const shape: SchemaShape = {} as HeraldSchema;
void [publishing, subscribing, reading, dynamic, auth, presence, shape];

async function calling(): Promise<string> {
  const todo = await h.rpc('todos.add', { title: 'milk' }, { timeoutMs: 100 });
  assertType<Equal<typeof todo, { id: string; title: string }>>();
  const n = await h.rpc('todos.count');
  assertType<Equal<typeof n, number>>();
  const other = await h.rpc('undeclared', [1]);
  assertType<Equal<typeof other, unknown>>();
  const untyped = await new Herald({ url: 'ws://x/ws' }).rpc('any.thing', { a: 1 });
  assertType<Equal<typeof untyped, unknown>>();
  return todo.id;
}
void calling;
