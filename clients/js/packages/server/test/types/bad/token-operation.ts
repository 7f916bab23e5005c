// expect-error: TS2322 Type '"write"' is not assignable to type 'TokenOperation'
import { createConnectionToken } from '@herald/server';

createConnectionToken({ sub: 'u', caps: { 'chat:*': ['subscribe', 'write'] } }, { secret: 'x'.repeat(32) });
