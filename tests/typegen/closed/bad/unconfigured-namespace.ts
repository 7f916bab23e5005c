// expect-error: TS2345 is not assignable to parameter of type 'never'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
// The server refuses this channel with unknown_channel; tsc refuses it too.
void h.publish('lobby', 'hello', { text: 'hi' });
