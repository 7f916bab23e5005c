// expect-error: TS2554 Expected 2-3 arguments, but got 1
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
// todos.add has a request schema: its data cannot be left out.
void h.rpc('todos.add');
