// expect-error: TS2367 This comparison appears to be unintentional because the types '"chat.destroy"' and '"chat.message"' have no overlap
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../schema.js';
const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });
h.subscribe('chat:lobby', {
  events: ['chat.destroy'],
  onEvent: (e) => {
    if (e.event === 'chat.message') void e;
  },
});
