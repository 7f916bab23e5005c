// expect-error: TS2322 Type 'string' is not assignable to type 'number'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../herald-types.js';
const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
// todos.add resolves with a todo whose id is a string.
export async function f(): Promise<number> {
  const id: number = (await h.rpc('todos.add', { title: 'x' })).id;
  return id;
}
