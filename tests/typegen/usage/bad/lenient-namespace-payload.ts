// expect-error: TS2322 Type 'string' is not assignable to type 'number'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
// Without strict_events unknown events pass, but a declared one is typed.
void h.publish('notes:ann', 'note.saved', { id: '1', body: 'text' });
