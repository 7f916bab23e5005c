// expect-error: TS2339 Property 'token' does not exist
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
h.subscribe('chat:lobby', {
  onEvent: (e) => {
    if (e.event === 'chat.message') void e.data.token;
  },
});
