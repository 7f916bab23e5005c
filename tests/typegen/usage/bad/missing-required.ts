// expect-error: TS2345 Property 'token' is missing
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
void h.publish('chat:lobby', 'chat.message', { text: 'hi', author: { id: 'u', name: 'n' } });
