// expect-error: TS2345 Argument of type '"chat.mesage"' is not assignable
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
void h.publish('chat:lobby', 'chat.mesage', { text: 'hi', author: { id: 'u', name: 'n' }, token: 't' });
