// expect-error: TS2322 Type '"chat.gone"' is not assignable to type '"chat.message" | "chat.destroy" | undefined'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../schema.js';
const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });
void h.destroy('chat:lobby', { event: 'chat.gone' });
