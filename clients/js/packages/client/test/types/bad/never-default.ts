// expect-error: TS2345 Argument of type '"chat.message"' is not assignable to parameter of type 'never'
import { Herald } from '@herald/client';
import type { StrictDefaultsSchema } from '../schema.js';
const h = new Herald<StrictDefaultsSchema>({ url: 'ws://x/ws' });
void h.publish('lobby', 'chat.message', { text: 'x' });
