// expect-error: TS2322 Property 'done' is missing
import { heraldHook } from '@herald/server';
import type { HeraldSchema } from '../herald-types.js';
// The backend must answer todos.add with a whole todo (response schema).
export const POST = heraldHook.rpc<HeraldSchema>({ 'todos.add': async (data) => ({ id: '1', title: data.title }) });
