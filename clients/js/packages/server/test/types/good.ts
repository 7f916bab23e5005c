// Must type-check: typed usage of @herald/server with the client's fixture schema.
import { createConnectionToken, createSubscriptionToken, HeraldServer, type ServerInfo, type SigningOptions } from '@herald/server';
import { HeraldServer as EdgeServer } from '@herald/server/http';
import type { HeraldSchema } from '../../../client/test/types/schema.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(): T | undefined => undefined;

const api = new HeraldServer<HeraldSchema>({ url: 'http://localhost:8080', apiKey: 'k', timeoutMs: 2000 });

export async function handler(room: string): Promise<number | undefined> {
  const { offset } = await api.publish(`chat:${room}`, 'chat.message', { text: 'hi', author: 'a', token: 't' });
  await api.publish('lobby', 'anything', [1, 2]);
  await api.publish(`chat:${room}`, 'chat.destroy', {}, { ephemeral: true });
  const page = await api.history(`chat:${room}`, { limit: 20, before: 100 });
  for (const e of page.events) {
    if (e.event === 'chat.message') assertType<Equal<typeof e.data, { text: string; author: string; replyTo?: number | null }>>();
  }
  return offset;
}

const untyped = new HeraldServer({ url: 'http://localhost:8080' });
void untyped.publish('x', 'y', { z: 1 });

// Tokens and the admin methods.
const key: SigningOptions = { secret: 'x'.repeat(32) };
export async function tokens(user: { id: string; name: string }): Promise<string> {
  const t: string = createConnectionToken({ sub: user.id, info: { name: user.name }, caps: { 'chat:*': ['subscribe', 'publish'] }, channels: [`dm:${user.id}`] }, key);
  createConnectionToken({ sub: user.id }, { privateKey: '-----BEGIN PRIVATE KEY-----', algorithm: 'ES256', kid: 'k1' });
  createSubscriptionToken({ sub: user.id, channel: `dm:${user.id}`, caps: ['subscribe', 'history'], expiresIn: 300 }, { secret: new Uint8Array(32), algorithm: 'HS512' });
  const { disconnected } = await api.disconnect(user.id, 'banned');
  const { unsubscribed } = await api.unsubscribe(user.id, 'chat:lobby');
  void [disconnected + unsubscribed, new EdgeServer({ url: 'http://x' })];
  return t;
}

// Presence, lifecycle and the admin reads.
export async function lifecycle(room: string): Promise<string> {
  const { members, complete } = await api.presence(`chat:${room}`);
  const first: string | undefined = members[0]?.user;
  const { clients, users } = await api.presenceStats(`chat:${room}`);
  const { epoch } = await api.destroy(`chat:${room}`, { event: 'chat.destroy', data: { reason: 'closed' } });
  await api.destroy('lobby');
  const { channels, total } = await api.channels({ prefix: 'chat:', limit: 10 });
  const info: ServerInfo = await api.info();
  createConnectionToken({ sub: 'mod', caps: { 'chat:*': ['subscribe', 'presence', 'destroy'] } }, key);
  void [complete, first, clients, users, channels[0]?.subscribers, total, info.uptimeS];
  return epoch;
}


// Backend hooks: typed route handlers.
import { allow, deny, disconnect, heraldHook, hookCookie } from '@herald/server';

export const connectRoute = heraldHook.connect(async (hook) => {
  const session = hookCookie(hook.headers.cookie, 'session');
  if (!session) return deny('unauthorized', 'log in first');
  if (session === 'banned') return disconnect(4403, 'banned');
  return allow({ user: session, caps: { 'room:*': ['subscribe', 'publish'] }, channels: [`user:${session}`], expire_at: 1, data: { theme: 'dark' } });
});
export const publishRoute = heraldHook.publish((hook) => (hook.event === 'x' ? allow({ data: { replaced: true } }) : allow()));
export const refreshRoute = heraldHook.refresh((hook) => allow({ expire_at: hook.expire_at + 3600 }));
export const rpcRoute = heraldHook.rpc<HeraldSchema>({
  'todos.add': async (data, hook) => {
    assertType<Equal<typeof data, { title: string }>>();
    return hook.user ? { id: '1', title: data.title } : deny('unauthorized', 'log in');
  },
  'todos.count': () => 3,
  'anything.else': (data) => ({ echo: data }),
});
export const handlers: Array<(r: Request) => Promise<Response>> = [connectRoute, publishRoute, refreshRoute, rpcRoute];
