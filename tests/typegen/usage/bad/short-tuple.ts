// expect-error: TS2322 Type '[number]' is not assignable to type '[number, number]'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
void h.publish('chat:lobby', 'chat.message', { text: 'hi', author: { id: 'u', name: 'n' }, token: 't', position: [1] });
