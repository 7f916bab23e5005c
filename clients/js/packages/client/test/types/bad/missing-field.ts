// expect-error: TS2345 Property 'author' is missing
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../schema.js';
const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });
void h.publish('chat:lobby', 'chat.message', { text: 'hi', token: 't' });
