// expect-error: TS2322 Type 'number' is not assignable to type 'string'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../schema.js';
const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });
void h.rpc('todos.add', { title: 1 });
