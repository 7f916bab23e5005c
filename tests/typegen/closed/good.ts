// Must type-check: with [defaults] allow_unknown = false (../herald-closed.toml)
// the configured namespace still works.
import { Herald } from '@herald/client';
import type { HeraldSchema } from './herald-types.js';

const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });
void h.publish('chat:lobby', 'chat.destroy', { reason: 'done' });
