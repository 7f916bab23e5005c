// expect-error: TS2339 Property 'email' does not exist
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
void h.history('chat:lobby').then((page) => {
  for (const e of page.events) if (e.event === 'chat.message') void e.data.author.email;
});
