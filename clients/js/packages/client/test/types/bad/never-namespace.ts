// expect-error: TS2345 is not assignable to parameter of type 'never'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../schema.js';
const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });
h.subscribe('locked:room', { onEvent: () => {} });
