// expect-error: TS2353 Object literal may only specify known properties, and 'why' does not exist
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../schema.js';
const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });
void h.destroy('chat:lobby', { event: 'chat.destroy', data: { why: 'x' } });
