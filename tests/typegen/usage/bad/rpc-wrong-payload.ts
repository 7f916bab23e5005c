// expect-error: TS2322 Type 'number' is not assignable to type 'string'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
// todos.add's request schema: title is a string.
void h.rpc('todos.add', { title: 42 });
