// expect-error: TS2353 Object literal may only specify known properties, and 'why' does not exist
import { HeraldServer } from '@herald/server';
import type { HeraldSchema } from '../../../../client/test/types/schema.js';
const api = new HeraldServer<HeraldSchema>({ url: 'http://x' });
void api.destroy('chat:lobby', { event: 'chat.destroy', data: { why: 'x' } });
