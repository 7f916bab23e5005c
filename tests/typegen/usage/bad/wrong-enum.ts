// expect-error: TS2322 Type '"shout"' is not assignable to type '"text" | "emote" | undefined'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
void h.publish('chat:lobby', 'chat.message', { text: 'hi', author: { id: 'u', name: 'n' }, token: 't', kind: 'shout' });
