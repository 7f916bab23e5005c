// expect-error: TS2345 Property 'token' is missing
import { HeraldServer } from '@herald/server';
import type { HeraldSchema } from '../../../../client/test/types/schema.js';
const api = new HeraldServer<HeraldSchema>({ url: 'http://localhost:8080' });
void api.publish('chat:a', 'chat.message', { text: 'hi', author: 'a' });
