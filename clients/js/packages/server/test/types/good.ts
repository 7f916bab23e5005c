// Must type-check: typed usage of @herald/server with the client's fixture schema.
import { HeraldServer } from '@herald/server';
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
