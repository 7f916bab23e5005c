// expect-error: TS2322 Type 'number' is not assignable to type 'string'
import { heraldHook } from '@herald/server';
import type { HeraldSchema } from '../../../../client/test/types/schema.js';
// todos.add must resolve with {id: string, title: string}.
export const POST = heraldHook.rpc<HeraldSchema>({ 'todos.add': async (data) => ({ id: 1, title: data.title }) });
