// expect-error: TS2353 Object literal may only specify known properties, and 'colour' does not exist
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
void h.publish('chat:lobby', 'chat.destroy', { reason: 'spam', colour: 'red' });
