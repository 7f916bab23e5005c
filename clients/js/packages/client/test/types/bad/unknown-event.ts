// expect-error: TS2345 Argument of type '"chat.typo"' is not assignable to parameter of type '"chat.message" | "chat.destroy"'
import { Herald } from '@herald/client';
import type { HeraldSchema } from '../schema.js';
const h = new Herald<HeraldSchema>({ url: 'ws://x/ws' });
void h.publish('chat:lobby', 'chat.typo', {});
