// expect-error: TS2561 Object literal may only specify known properties, but 'txt' does not exist
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../schema.js';
const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });
void h.publish('chat:lobby', 'chat.message', { txt: 'hi', author: 'a', token: 't' });
