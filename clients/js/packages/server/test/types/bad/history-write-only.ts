// expect-error: TS2339 Property 'token' does not exist
import { HeraldServer } from '@herald/server';
import type { HeraldSchema } from '../../../../client/test/types/schema.js';
const api = new HeraldServer<HeraldSchema>({ url: 'http://localhost:8080' });
export const f = async () => {
  for (const e of (await api.history('chat:a')).events) if (e.event === 'chat.message') void e.data.token;
};
