// expect-error: TS2345 Argument of type '"e"' is not assignable to parameter of type 'never'
import { HeraldServer } from '@herald/server';
import type { HeraldSchema } from '../../../../client/test/types/schema.js';
const api = new HeraldServer<HeraldSchema>({ url: 'http://localhost:8080' });
void api.publish('locked:a', 'e', {});
